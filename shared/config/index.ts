export {
  addConfigOptions,
  ConfigError,
  configFlags,
  envName,
  type ParsedFlags,
  type ConfigSources,
  loadConfig,
  type OptionSpec,
  type OptionType,
  type OptionValue,
} from './load.ts'
export { parseBytes, parseDuration, parseHostPort } from './units.ts'
export { SITE_CONFIG_OPTIONS, siteOf } from './site.ts'

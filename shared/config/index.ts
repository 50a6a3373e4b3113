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
export { siteOf } from './site.ts'

export {
  addConfigOptions,
  ConfigError,
  configFlags,
  envName,
  type ParsedFlags,
  usageErrorOf,
  type ConfigSources,
  loadConfig,
  type OptionSpec,
  type OptionType,
  type OptionValue,
} from './load.ts'
export { parseBytes, parseDuration, parseHostPort } from './units.ts'

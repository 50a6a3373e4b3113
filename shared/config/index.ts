export {
  ConfigError,
  type ConfigSources,
  loadConfig,
  type OptionSpec,
  type OptionType,
  type OptionValue,
} from './load.ts'
export { parseBytes, parseDuration, parseHostPort } from './units.ts'

import { Command, CommanderError, Option } from 'commander'

/** One flag, in the shape of a `node:util` parseArgs option (the bench's tables predate commander). */
export interface FlagSpec {
  readonly type: 'string' | 'boolean'
  readonly multiple?: boolean
  readonly short?: string
  readonly default?: string
}

type ValueOf<S extends FlagSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['multiple'] extends true
    ? string[]
    : string

export type FlagValues<O extends Readonly<Record<string, FlagSpec>>> = {
  [K in keyof O]: O[K] extends { readonly default: string } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined
}

/**
 * The bench's flags, parsed by `commander` like the `shoal` command's: `--flag VALUE`, `--flag=VALUE`,
 * repeatable flags collect every value, an unknown flag or a missing value throws one line naming it.
 */
export function parseFlags<O extends Readonly<Record<string, FlagSpec>>>(
  argv: readonly string[],
  options: O,
): { values: FlagValues<O>; positionals: string[] } {
  const cmd = new Command()
    .helpOption(false)
    .allowExcessArguments(true)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
  const attributes: [string, string][] = []
  for (const [name, spec] of Object.entries(options)) {
    const short = spec.short === undefined ? '' : `-${spec.short}, `
    const option = new Option(`${short}--${name}${spec.type === 'string' ? ' <value>' : ''}`)
    if (spec.multiple === true) option.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    if (spec.default !== undefined) option.default(spec.default)
    cmd.addOption(option)
    attributes.push([name, option.attributeName()])
  }
  try {
    cmd.parse([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError)
      throw new Error(err.message.replace(/^error: /, '').replaceAll('\n', ' '), { cause: err })
    throw err
  }
  const values: Record<string, unknown> = {}
  for (const [name, attribute] of attributes) values[name] = cmd.getOptionValue(attribute)
  return { values: values as FlagValues<O>, positionals: [...cmd.args] }
}

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * The npm packages a fresh Node process loads while it runs `body` (ES module source, run with top-level await). A
 * Node load hook registered before `body` records each module as it is loaded: a package loaded is held in memory for
 * the process's life (its source, bytecode and objects), which is what tests of lazy loading look at. Node's own
 * built-in modules do not pass through the hook; `process.moduleLoadList` lists those.
 */
export async function packagesLoadedBy(
  body: string,
  opts: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv },
): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ load(url, context, next) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url)
      if (m) seen.add(m[1])
      return next(url, context)
    } })
    ${body}
    process.stdout.write(JSON.stringify([...seen]))
  `
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
  })
  return JSON.parse(stdout) as string[]
}

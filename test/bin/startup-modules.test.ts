import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { packagesLoadedBy } from '../../harness/loaded-packages.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ENTRIES = ['cli/main.ts', 'agent/main.ts', 'seeder/main.ts']

/** What a fresh process has loaded once it has imported what `shoal agent` and `shoal seeder` import before they start. */
function loadedByEntries(): Promise<string[]> {
  const body = `for (const e of ${JSON.stringify(ENTRIES)}) await import(new URL(e, ${JSON.stringify(`file://${ROOT}`)}).href)`
  return packagesLoadedBy(body, { cwd: ROOT, env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } })
}

describe('modules a service loads at start-up', () => {
  it("leaves undici (npm's and Node's own), the YAML parser and the runtime configurators until they are needed", async () => {
    const loaded = new Set(await loadedByEntries())
    // The check sees packages at all: these are loaded by every service.
    expect(loaded.has('libp2p')).toBe(true)
    expect(loaded.has('fastify')).toBe(true)
    // undici: at the first origin request with a body or bulk chunk (shared/process/undici.ts); yaml: only with a config file;
    // smol-toml: only by `shoal configure`; Noise: at the first connection that negotiates it.
    expect([...loaded].filter((p) => ['undici', 'yaml', 'smol-toml', '@chainsafe/libp2p-noise'].includes(p))).toEqual(
      [],
    )
    // Node's bundled undici (~0.7 MiB of source) is loaded by an ESM import of node:http, whose namespace reads its
    // lazy WebSocket getters: node:http is taken with process.getBuiltinModule instead. Node lists its own modules
    // (a load hook would change how built-ins are imported, so this child runs without one).
    const script = `
      for (const e of ${JSON.stringify(ENTRIES)}) await import(new URL(e, ${JSON.stringify(`file://${ROOT}`)}).href)
      process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.includes('undici'))))
    `
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT })
    expect(JSON.parse(stdout)).toEqual([])
  }, 60_000)
})

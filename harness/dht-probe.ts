import { execFile } from 'node:child_process'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { ShoalTree } from './previous-main.ts'

/**
 * Asks the DHT of a running swarm for the providers of a blob, from a DHT client built by one tree's own code
 * (`shared/p2p`'s createP2PNode and blobCid, run in a child process with that tree as its working directory). A
 * swarm of two releases shares bytes through the seeder's hints even when their DHTs cannot talk, so whether a node
 * of one release can look up what nodes of the other provide is checked on its own, with this.
 */
export interface DhtProbe {
  /** The first multiaddr (with `/p2p/<id>`) the probe dials; its lookup starts from that node alone. */
  readonly via: string
  readonly digest: string
  /** Peer ids the lookup should find; it is repeated until it has found them all, or `timeoutMs` has passed. */
  readonly want: readonly string[]
  readonly timeoutMs?: number
}

const PROBE = `
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { blobCid, createP2PNode } from './shared/p2p/index.ts'
const [via, digest, wantList, timeoutMs] = process.argv.slice(1)
const want = new Set(wantList.split(',').filter((x) => x !== ''))
const deadline = Date.now() + Number(timeoutMs)
const dir = await mkdtemp(join(tmpdir(), 'shoal-dht-probe-'))
const node = await createP2PNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [via], dhtServer: false })
const found = new Set()
let lastError = ''
try {
  while (Date.now() < deadline && ![...want].every((id) => found.has(id))) {
    try {
      const signal = AbortSignal.timeout(Math.max(1, Math.min(3000, deadline - Date.now())))
      for await (const p of node.contentRouting.findProviders(blobCid(digest), { signal })) found.add(p.id.toString())
    } catch (err) {
      lastError = err.message
    }
    await new Promise((r) => setTimeout(r, 200))
  }
} finally {
  await node.stop()
  await rm(dir, { recursive: true, force: true })
}
process.stdout.write(JSON.stringify({ found: [...found], lastError }))
`

/**
 * The test's environment without SHOAL_* settings, and with the compile cache `bin/shoal.js` turns on: the probe
 * loads the same sources, and with their stripped types cached it starts in about half the time.
 */
function probeEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_')))
  if (env['NODE_DISABLE_COMPILE_CACHE'] === undefined && env['NODE_COMPILE_CACHE'] === undefined)
    env['NODE_COMPILE_CACHE'] = join(homedir(), '.cache', 'shoal', 'compile-cache')
  return env
}

/** The providers the probe of `tree` found (all of `want` unless it gave up), and its last lookup error. */
export async function probeProviders(
  tree: ShoalTree,
  probe: DhtProbe,
): Promise<{ readonly found: readonly string[]; readonly lastError: string }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      PROBE,
      probe.via,
      probe.digest,
      probe.want.join(','),
      String(probe.timeoutMs ?? 10_000),
    ],
    // Killed past its own lookups' time and a stop's: a hung probe must fail the test, not outlive it.
    { cwd: tree.root, env: probeEnv(), timeout: (probe.timeoutMs ?? 10_000) + 30_000, killSignal: 'SIGKILL' },
  )
  return JSON.parse(stdout) as { found: string[]; lastError: string }
}

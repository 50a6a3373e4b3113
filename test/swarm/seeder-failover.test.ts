import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import type { RunningAgent } from '../../agent/main.ts'
import { startLocalAgent } from '../../harness/fleet.ts'
import { createLogger } from '../../shared/log/index.ts'
import { type DemoOrigin, generateSampleImage, startDemoOrigin } from '../../shared/sample/index.ts'
import { pullImage } from '../../shared/sample/pull.ts'
import { parseSeederAddr, seederFor, withPeerId } from '../../shared/swarm/index.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { type RunningSeeder, startSeeder } from '../../seeder/main.ts'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

const log = createLogger({ level: process.env['SHOAL_TEST_LOG'] ?? 'silent' })

async function seeder(dir: string, origin: DemoOrigin, i: number): Promise<RunningSeeder> {
  const s = await startSeeder(
    loadSeederConfig({
      argv: [
        '--origin',
        origin.url,
        '--data',
        join(dir, `seeder-${i}`),
        '--p2p-listen',
        '/ip4/127.0.0.1/tcp/0',
        '--api-listen',
        '127.0.0.1:0',
        '--chunk-size',
        '256KiB',
        // Slow enough to be caught mid-pull.
        '--origin-rate',
        '6MiB',
      ],
      env: {},
      readFile: () => '',
    }),
    { log },
  )
  let closed: Promise<void> | undefined
  const once = { ...s, stop: () => (closed ??= s.stop()) }
  cleanups.push(once.stop)
  return once
}

const addrOf = (s: { multiaddrs: readonly string[]; peerId: string }) =>
  withPeerId(
    s.multiaddrs.find((m) => m.includes('/tcp/'))!,
    s.peerId,
  )

describe('seeder failover', () => {
  it('the seeder that owns a blob dies mid-pull: agents ask the next seeder, not the origin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-failover-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const image = await generateSampleImage({
      dir: join(dir, 'image'),
      layers: 2,
      layerBytes: 4 * 1024 * 1024,
      seed: 'failover',
    })
    const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
    cleanups.push(() => origin.stop())
    const seeders = [await seeder(dir, origin, 0), await seeder(dir, origin, 1)]
    const refs = seeders.map((s) => parseSeederAddr(addrOf(s))!)
    const agents: RunningAgent[] = []
    for (let i = 0; i < 3; i++) {
      const a = await startLocalAgent(
        { origin, dir, index: i },
        [...refs.flatMap((r) => ['--seeder', r.addr.toString()]), '--chunk-size', '256KiB', '--stall-timeout', '10s'],
        log,
      )
      cleanups.push(() => a.stop())
      agents.push(a)
    }
    const big = [...image.blobs].sort((a, b) => b.size - a.size)[0]!
    const owner = seederFor(refs, big.digest)!
    const dead = seeders[refs.indexOf(owner)]!
    const pulls = Promise.all(agents.map((a) => pullImage(a.url, 'demo/app', 'v1')))
    pulls.catch(() => {})
    // The owner dies a quarter of the way through the big layer.
    while ((origin.stats.perBlob.get(big.digest)?.bytes ?? 0) < big.size / 4) await sleep(20)
    await dead.stop()
    const pulledByDead = new Map([...origin.stats.perBlob].map(([d, c]) => [d, refsOwn(d) ? c.bytes : 0]))
    function refsOwn(d: string): boolean {
      return seederFor(refs, d)?.id === owner.id
    }
    const results = await pulls
    const imageBytes = image.blobs.reduce((n, b) => n + b.size, 0)
    for (const r of results) expect(r.blobBytes).toBe(imageBytes)
    expect(pulledByDead.get(big.digest)).toBeLessThan(big.size)
    // Counted at the origin: each blob once, plus what the dead seeder had pulled of it.
    for (const b of image.blobs) {
      const sent = origin.stats.perBlob.get(b.digest)?.bytes ?? 0
      expect(sent, b.digest).toBeLessThanOrEqual(b.size + (pulledByDead.get(b.digest) ?? 0))
    }
  }, 120_000)
})

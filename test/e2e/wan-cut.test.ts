import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Report } from '../../bench/fleet/report.ts'
import { Cleanup, removeDir, tempDir } from '../../harness/e2e/index.ts'

/**
 * The issue's edge-site fleet (2 sites × 3 nodes, 200 mbit LANs, 24 mbit WAN links, 32 MiB image) built by
 * the fleet benchmark in network namespaces, with site-0's WAN link taken down 5 s into the rollout for
 * 20 s (`--wan-cut`). A cut site keeps sharing what it holds and resumes when the link returns: every node
 * finishes, and at most one extra S crosses the cut link (WAN payload into site-0 ≤ 2 × S, kernel counters).
 *
 * Needs root (namespaces, veths, tc) and the fleet's tools (docker-registry, skopeo). One run at a time on a
 * machine: the benchmark refuses to start beside another.
 */
const BENCH = new URL('../../bench/fleet/main.ts', import.meta.url).pathname
const CUT = { site: 'site-0', atS: 5, forS: 20 }
/** One S to bring the image into the site, and at most one more for what the cut cost. */
const MAX_CUT_SITE_INTO_OVER_S = 2

async function runBench(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

describe('a site whose WAN link is cut for 20 s mid-rollout', () => {
  const cleanup = new Cleanup()
  afterAll(() => cleanup.run())

  it('still gets every node the image, with at most one extra S across that WAN', { timeout: 1_500_000 }, async () => {
    expect(process.getuid?.(), 'the fleet needs root (network namespaces and tc)').toBe(0)
    const out = cleanup.add(await tempDir('wan-cut'), removeDir)
    const r = await runBench([
      ...['--sites', '2', '--site-nodes', '3', '--wan', '24', '--image-mib', '32'],
      ...['--node-up', '200', '--node-down', '200', '--origin-up', '200'],
      ...['--seeder-up', '200', '--seeder-down', '200', '--cache-up', '200', '--cache-down', '200'],
      ...['--scenarios', 'shoal-sites', '--wan-cut', `${CUT.site}:${CUT.atS}:${CUT.forS}`, '--out', out],
      // Finishing is what counts here, not how fast: a loaded machine must not turn into a failed pull.
      ...['--pull-timeout', '900'],
    ])
    expect(r.code, r.output).toBe(0)
    // The run's table, for whoever reads the test log (today's numbers show there too).
    process.stdout.write(`${r.output.slice(r.output.indexOf('Edge sites:'))}\n`)
    const [stamp] = (await readdir(out)).filter((d) => d !== 'raw')
    const report = JSON.parse(await readFile(join(out, stamp!, 'report.json'), 'utf8')) as Report
    const s = report.scenarios.find((x) => x.name === 'shoal-sites')!
    expect(s.status, s.reason).toBe('ok')

    // The cut really happened while the site was still pulling, for as long as asked.
    const cut = s.sites?.wanCut
    expect(cut?.error).toBeUndefined()
    expect(cut?.downAtS).toBeDefined()
    expect(cut?.upAtS).toBeDefined()
    expect(cut!.upAtS! - cut!.downAtS!).toBeGreaterThanOrEqual(CUT.forS - 0.5)
    const site0 = s.sites!.wan.find((w) => w.site === CUT.site)!
    expect(site0.nodes).toBe(3)

    // Every node verified (each blob at full size in its OCI layout), the cut site's included.
    expect(s.nodes.filter((n) => !n.ok)).toEqual([])
    expect(s.nodes).toHaveLength(6)
    expect(site0.slowestS).toBeGreaterThan(cut!.downAtS!)

    expect(site0.intoOverImage, `WAN bytes into ${CUT.site} / S`).toBeLessThanOrEqual(MAX_CUT_SITE_INTO_OVER_S)
  })
})

/**
 * The first seconds of a cold rollout, for the simulator's own cost: simulates `shoal-cold` up to LIMIT_MS of
 * simulated time with the flags of `npm run bench:sim` (the first size) and prints one JSON line: CPU seconds of this
 * process, events, simulated seconds, the agents' request counts (requests, `busy` answers, …) and `hash`, a digest
 * of the whole run but its wall time and event count (every node's time, link counters, DHT and request counts,
 * flow updates): a change to the simulator's speed must leave it as it was (same seed, same report).
 *
 *   npx node --max-old-space-size=16384 bench/sim/cutoff.ts 5000 --nodes 1000 [--max-busy-backoff-ms 1000]
 */
import { createHash } from 'node:crypto'
import { imageBlobs, parseSimArgs } from './config.ts'
import { simulate } from './run.ts'

const argv = process.argv.slice(2)
const limitMs = Number(argv.shift())
if (!(limitMs > 0)) {
  process.stderr.write('usage: cutoff.ts LIMIT_MS [bench:sim flags]\n')
  process.exit(2)
}
const cfg = parseSimArgs(argv)
if (cfg === 'help') process.exit(0)
const { blobBytes, manifestBytes } = imageBlobs(cfg.imageMib, cfg.layers)
const before = process.cpuUsage()
const r = simulate('shoal-cold', { ...cfg.base, nodes: cfg.sizes[0]!, blobBytes, manifestBytes, limitMs })
const cpu = process.cpuUsage(before)
const { wallS: _wallS, events: _events, ...state } = r
const hash = createHash('sha256').update(JSON.stringify(state)).digest('hex').slice(0, 16)
process.stdout.write(
  `${JSON.stringify({ cpuS: (cpu.user + cpu.system) / 1e6, events: r.events, simulatedS: r.simulatedS, shoal: r.shoal, hash })}\n`,
)

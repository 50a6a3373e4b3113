import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import type { Digest } from '../../shared/oci/digest.ts'
import { type CheckedPartial, checkStore, openFsStore, type StoreCheck } from '../../shared/store/index.ts'
import {
  type CrashOrigin,
  imageManifest,
  prng,
  type ShoalProcess,
  spawnShoal,
  startCrashOrigin,
  type TestBlob,
  testBlob,
} from './crash-harness.ts'

const MiB = 1024 * 1024
const NAME = 'crash/app'
/** Fixed, so a failure replays the same kill schedule (the machine's timing still varies). */
const SEED = 20261123
const KILLS = 22
const CHUNK_BYTES = 64 * 1024
/**
 * The origin pull (shared/origin/pull-blob.ts) gathers origin bytes into 1 MiB appends, and the store records
 * progress as chunk ends land: a kill loses at most a batch and a chunk per download, plus what was still in the
 * sockets.
 */
const LOSS_PER_KILL_BYTES = 1 * MiB + CHUNK_BYTES + 256 * 1024
/** Downloads the test keeps going at once, each paced by the origin. */
const STREAMS = 3
const ORIGIN_RATE = 3 * MiB
const SEED_NAME = 'crash/seed'
const SEEDER_KILLS = 21

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {})
  cleanup = []
})

type Outcome =
  | { readonly kind: 'complete'; readonly got: number; readonly want: number; readonly corrupt: boolean }
  | {
      readonly kind: 'aborted'
      readonly got: number
      readonly corrupt: boolean
      readonly at: number
      readonly error: string
    }
  | { readonly kind: 'status'; readonly status: number }

/**
 * GETs a blob (from `start` with a Range) and compares every byte with the original as it arrives. With `hold`,
 * stops reading after the first piece until `hold` settles: the response is then mid-stream when the agent dies.
 */
async function getBlob(url: string, blob: TestBlob, start = 0, hold?: Promise<void>): Promise<Outcome> {
  let got = 0
  let corrupt = false
  try {
    const res = await request(`${url}/v2/${NAME}/blobs/${blob.digest}`, {
      headers: start > 0 ? { range: `bytes=${start}-` } : {},
    })
    if (res.statusCode !== (start > 0 ? 206 : 200)) {
      await res.body.dump()
      return { kind: 'status', status: res.statusCode }
    }
    for await (const part of res.body) {
      const b = part as Buffer
      if (!b.equals(blob.bytes.subarray(start + got, start + got + b.byteLength))) corrupt = true
      got += b.byteLength
      if (hold !== undefined) {
        await hold
        hold = undefined
      }
    }
    return { kind: 'complete', got, want: blob.bytes.byteLength - start, corrupt }
  } catch (err) {
    return { kind: 'aborted', got, corrupt, at: performance.now(), error: (err as Error).message }
  }
}

/** Where the store resumes a partial the origin path wrote: the end of the claimed run that starts at 0. */
function resumePoint(p: CheckedPartial): number {
  if (!p.trusted || !p.fileOk) return 0
  const first = p.claimed[0]
  return first !== undefined && first.start === 0 ? first.end : 0
}

/** The bytes each partial claims are the blob's bytes. */
async function expectClaimsHold(check: StoreCheck, blobs: ReadonlyMap<Digest, TestBlob>): Promise<void> {
  for (const p of check.partials) {
    if (!p.trusted || !p.fileOk) continue
    const blob = blobs.get(p.digest)!
    const fh = await open(p.path, 'r')
    try {
      for (const r of p.claimed) {
        const buf = Buffer.alloc(r.end - r.start)
        await fh.read(buf, 0, buf.byteLength, r.start)
        expect(buf.equals(blob.bytes.subarray(r.start, r.end)), `partial ${p.digest} bytes ${r.start}..${r.end}`).toBe(
          true,
        )
      }
    } finally {
      await fh.close()
    }
  }
}

interface Ledger {
  /** Resume points the store recorded at the last kill (absent: nothing to resume). */
  resume: Map<Digest, number>
  /** Sum over kills of the recorded resume points: what an agent restarting from zero would fetch again. */
  wouldRefetch: number
}

/** The first origin GET of each blob since `from` starts where the store recorded its progress. */
function expectResumed(origin: CrashOrigin, from: number, ledger: Ledger): number {
  const seen = new Set<Digest>()
  let checked = 0
  for (const r of origin.requests.slice(from)) {
    if (seen.has(r.digest)) continue
    seen.add(r.digest)
    const want = ledger.resume.get(r.digest) ?? 0
    expect(r.start, `origin GET of ${r.digest} after a restart`).toBe(want)
    expect(r.ranged).toBe(want > 0)
    if (want > 0) checked++
  }
  return checked
}

describe('an agent killed with SIGKILL at random points of many downloads', () => {
  it('restarts with every cached blob intact, resumes partials from what is on disk, index and files agreeing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-crash-agent-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const sizes = [3, 7, 12, 20, 2, 5, 9, 14, 4, 6, 10, 16]
    // Odd sizes: the last chunk is short and no blob ends on a 1 MiB append boundary.
    const blobs = sizes.map((mib, i) => testBlob(mib * MiB + 4099 * (i + 1), `crash-agent-${i}`))
    const byDigest = new Map(blobs.map((b) => [b.digest, b]))
    const total = blobs.reduce((n, b) => n + b.bytes.byteLength, 0)
    const origin = await startCrashOrigin({ repos: new Map([[NAME, blobs]]), bytesPerSecond: ORIGIN_RATE })
    cleanup.push(() => origin.close())
    const data = join(dir, 'agent')
    const args = ['--listen', '127.0.0.1:0', '--origin', origin.url, '--data', data, '--chunk-size', '64KiB']
    const random = prng(SEED)

    const complete = new Set<Digest>()
    const ledger: Ledger = { resume: new Map(), wouldRefetch: 0 }
    let agent: ShoalProcess | undefined
    cleanup.push(async () => agent?.kill())
    /** Kills that landed while the downloads were under way; of those, while origin bytes were flowing. */
    let killsMidDownload = 0
    let killsMidTransfer = 0
    let resumedGets = 0
    let abortedMidStream = 0
    let heldAborted = 0

    /** Every complete blob, read through the agent's /v2/, is the original. */
    const expectServed = async (url: string) => {
      for (const digest of complete) {
        expect(await getBlob(url, byDigest.get(digest)!), `GET ${digest} from the cache`).toEqual({
          kind: 'complete',
          got: byDigest.get(digest)!.bytes.byteLength,
          want: byDigest.get(digest)!.bytes.byteLength,
          corrupt: false,
        })
      }
    }

    /** Keeps STREAMS downloads of incomplete blobs going (plus joined Range readers) until every one is done. */
    const download = (url: string, outcomes: Outcome[]) => {
      const queue = blobs.filter((b) => !complete.has(b.digest))
      const worker = async () => {
        for (let blob = queue.shift(); blob !== undefined; blob = queue.shift()) {
          const offset = random() < 0.5 ? 1 + Math.floor(random() * (blob.bytes.byteLength - 1)) : 0
          const runs = [getBlob(url, blob), ...(offset > 0 ? [getBlob(url, blob, offset)] : [])]
          const results = await Promise.all(runs)
          outcomes.push(...results)
          if (results[0]!.kind !== 'complete') return
        }
      }
      return Promise.all(Array.from({ length: STREAMS }, worker))
    }

    for (let kill = 1; kill <= KILLS; kill++) {
      agent = await spawnShoal('agent', args)
      const from = origin.requests.length
      const sentBefore = origin.sentBytes()
      await expectServed(agent.url)

      const outcomes: Outcome[] = []
      const killed = Promise.withResolvers<void>()
      // A reader that stalls in the middle of a cached blob: the kill lands mid-response.
      const cached = [...complete].map((d) => byDigest.get(d)!).find((b) => b.bytes.byteLength >= 8 * MiB)
      const held = cached === undefined ? undefined : getBlob(agent.url, cached, 0, killed.promise)
      const downloads = download(agent.url, outcomes)

      // The moment: a random delay from start-up (open, reconcile, first requests), or a random amount of
      // origin bytes into the downloads; whichever kind, never later than the downloads' end.
      const early = random() < 0.25
      const moment = early
        ? delay(random() * 400)
        : origin.whenSent(sentBefore + Math.round((0.5 + random() * 2.5) * MiB * STREAMS))
      const ended = await Promise.race([moment.then(() => false), downloads.then(() => true)])
      if (!ended) killsMidDownload++
      if (origin.inFlight() > 0) killsMidTransfer++
      const killedAt = performance.now()
      await agent.kill()
      killed.resolve()
      await downloads
      const heldOutcome = await held
      if (heldOutcome !== undefined) outcomes.push(heldOutcome)
      if (heldOutcome?.kind === 'aborted') heldAborted++

      // Clients: correct bytes or an aborted response, never a clean end of a short or wrong body.
      for (const o of outcomes) {
        expect(o.kind, JSON.stringify(o)).not.toBe('status')
        if (o.kind === 'complete') expect(o).toMatchObject({ got: o.want, corrupt: false })
        if (o.kind === 'aborted') {
          expect(o.corrupt).toBe(false)
          expect(o.at, `a client failed before the kill: ${o.error}`).toBeGreaterThanOrEqual(killedAt)
          if (o.got > 0) abortedMidStream++
        }
      }

      resumedGets += expectResumed(origin, from, ledger)
      // As the kill left it: only sound complete blobs; what partials claim is the blob's bytes.
      let check = await checkStore(data, { mode: 'crashed' })
      expect(check.problems, `after kill ${kill}`).toEqual([])
      await expectClaimsHold(check, byDigest)
      if (kill % 2 === 0) {
        // Every other time, reconcile here (the agent's own start-up does it the other times): then index and
        // files agree exactly.
        await (await openFsStore({ dir: data })).stop()
        check = await checkStore(data, { mode: 'reconciled' })
        expect(check.problems, `reconciled after kill ${kill}`).toEqual([])
      }
      for (const d of [...check.blobs.keys(), ...check.unindexed]) complete.add(d)
      const resume = new Map<Digest, number>()
      for (const p of check.partials) {
        const point = resumePoint(p)
        // Progress is never lost: the record only moves forward.
        expect(point, `resume point of ${p.digest}`).toBeGreaterThanOrEqual(ledger.resume.get(p.digest) ?? 0)
        if (point > 0) resume.set(p.digest, point)
        ledger.wouldRefetch += point
      }
      ledger.resume = resume
    }

    // The last run: nothing is killed, everything completes, then a clean stop.
    agent = await spawnShoal('agent', args)
    const from = origin.requests.length
    await expectServed(agent.url)
    const outcomes: Outcome[] = []
    await download(agent.url, outcomes)
    for (const o of outcomes) expect(o).toMatchObject({ kind: 'complete', corrupt: false })
    resumedGets += expectResumed(origin, from, ledger)
    expect(await agent.stop()).toBe(0)
    agent = undefined
    const final = await checkStore(data, { mode: 'reconciled' })
    expect(final.problems).toEqual([])
    expect([...final.blobs.keys()].sort()).toEqual(blobs.map((b) => b.digest).sort())
    expect(final.partials).toEqual([])

    const sent = origin.sentBytes()
    const summary = {
      kills: KILLS,
      killsMidDownload,
      killsMidTransfer,
      resumedGets,
      abortedMidStream,
      heldAborted,
      blobBytes: total,
      originBytes: sent,
      refetched: sent - total,
      wouldRefetch: ledger.wouldRefetch,
    }
    console.info(`agent crash run: ${JSON.stringify(summary)}`)
    expect(killsMidDownload).toBeGreaterThanOrEqual(20)
    expect(killsMidTransfer).toBeGreaterThanOrEqual(KILLS / 2)
    expect(abortedMidStream).toBeGreaterThan(0)
    expect(resumedGets).toBeGreaterThanOrEqual(10)
    // Resuming saves what was on disk: what is fetched twice is only what a kill caught in memory, far less than a
    // restart from zero would fetch again.
    expect(sent - total).toBeLessThanOrEqual(KILLS * STREAMS * LOSS_PER_KILL_BYTES)
    expect(sent - total).toBeLessThan(ledger.wouldRefetch / 2)
  })
})

describe('a seeder killed with SIGKILL at random points of its origin pulls', () => {
  it('restarts with every stored blob intact and index and files agreeing, and finishes every pull', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-crash-seeder-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    const config = testBlob(1234, 'crash-seeder-config')
    const layers = [1, 2, 3, 5, 8].map((mib, i) => testBlob(mib * MiB + 7001 * (i + 1), `crash-seeder-${i}`))
    const blobs = [config, ...layers]
    const byDigest = new Map(blobs.map((b) => [b.digest, b]))
    const total = blobs.reduce((n, b) => n + b.bytes.byteLength, 0)
    const origin = await startCrashOrigin({
      repos: new Map([[SEED_NAME, blobs]]),
      manifests: new Map([[`${SEED_NAME}:v1`, imageManifest(config, layers)]]),
      bytesPerSecond: ORIGIN_RATE,
    })
    cleanup.push(() => origin.close())
    const data = join(dir, 'seeder')
    const args = [
      ...['--origin', origin.url, '--data', data, '--chunk-size', '64KiB'],
      ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0'],
    ]
    const random = prng(SEED + 1)
    let seeder: ShoalProcess | undefined
    cleanup.push(async () => seeder?.kill())
    const ledger: Ledger = { resume: new Map(), wouldRefetch: 0 }
    const complete = new Set<Digest>()
    let killsMidPull = 0
    let killsMidTransfer = 0
    let resumedGets = 0

    const preheat = async (url: string): Promise<string> => {
      const res = await request(`${url}/api/v1/preheat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: `${SEED_NAME}:v1` }),
      })
      expect(res.statusCode).toBe(202)
      return ((await res.body.json()) as { id: string }).id
    }
    // Another process's job: nothing to await but its status, so it is polled.
    const finished = async (url: string, id: string): Promise<string> => {
      for (;;) {
        const res = await request(`${url}/api/v1/preheat/${id}`).catch(() => undefined)
        if (res === undefined) return 'gone'
        const { state } = (await res.body.json()) as { state: string }
        if (state === 'done' || state === 'failed') return state
        await delay(100)
      }
    }

    for (let kill = 1; kill <= SEEDER_KILLS; kill++) {
      seeder = await spawnShoal('seeder', args)
      const from = origin.requests.length
      const sentBefore = origin.sentBytes()
      const job = finished(seeder.url, await preheat(seeder.url))
      const early = random() < 0.25
      const moment = early
        ? delay(random() * 300)
        : // Pulls resume, so each run only adds to what is on disk: small steps keep 20+ kills inside the pulls.
          origin.whenSent(sentBefore + Math.round((0.1 + random() * 0.8) * MiB))
      const ended = await Promise.race([moment.then(() => false), job.then(() => true)])
      if (!ended) killsMidPull++
      if (origin.inFlight() > 0) killsMidTransfer++
      await seeder.kill()
      await job

      resumedGets += expectResumed(origin, from, ledger)
      let check = await checkStore(data, { mode: 'crashed' })
      expect(check.problems, `after kill ${kill}`).toEqual([])
      await expectClaimsHold(check, byDigest)
      if (kill % 2 === 0) {
        await (await openFsStore({ dir: data })).stop()
        check = await checkStore(data, { mode: 'reconciled' })
        expect(check.problems, `reconciled after kill ${kill}`).toEqual([])
      }
      for (const d of [...check.blobs.keys(), ...check.unindexed]) complete.add(d)
      ledger.resume = new Map(check.partials.map((p) => [p.digest, resumePoint(p)]))
      for (const point of ledger.resume.values()) ledger.wouldRefetch += point
    }

    // The last run: the preheat finishes, the seeder serves nothing it has not verified, then a clean stop.
    seeder = await spawnShoal('seeder', args)
    const from = origin.requests.length
    expect(await finished(seeder.url, await preheat(seeder.url))).toBe('done')
    resumedGets += expectResumed(origin, from, ledger)
    expect(await seeder.stop()).toBe(0)
    seeder = undefined
    const final = await checkStore(data, { mode: 'reconciled' })
    expect(final.problems).toEqual([])
    expect([...final.blobs.keys()].sort()).toEqual(blobs.map((b) => b.digest).sort())
    expect(final.partials).toEqual([])

    const sent = origin.sentBytes()
    const summary = {
      kills: SEEDER_KILLS,
      killsMidPull,
      killsMidTransfer,
      completeBeforeLastRun: complete.size,
      resumedGets,
      blobBytes: total,
      originBytes: sent,
      refetched: sent - total,
      wouldRefetch: ledger.wouldRefetch,
    }
    console.info(`seeder crash run: ${JSON.stringify(summary)}`)
    expect(killsMidPull).toBeGreaterThanOrEqual(20)
    expect(killsMidTransfer).toBeGreaterThanOrEqual(SEEDER_KILLS / 2)
    expect(resumedGets).toBeGreaterThanOrEqual(5)
    // Same bound as the agent's, relative: a restart from zero would fetch every recorded prefix again.
    expect(sent - total).toBeLessThan(ledger.wouldRefetch / 2)
  })
})

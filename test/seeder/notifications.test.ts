import { afterEach, describe, expect, it } from 'vitest'
import { parseNotification, repositoryMatcher } from '../../seeder/notifications.ts'
import { platformBlobs, type SeederRig, startSeederRig, waitJob } from './seeder-harness.ts'

const EVENTS = 'application/vnd.docker.distribution.events.v1+json'
let rig: SeederRig | undefined
afterEach(async () => {
  await rig?.stop()
  rig = undefined
})

function envelope(repository: string, digest: string, mediaType: string, action = 'push') {
  return {
    events: [{ id: 'e1', action, target: { mediaType, digest, repository, tag: 'v1' }, request: { host: 'x' } }],
  }
}

async function notify(token: string | undefined, body: string, type = EVENTS): Promise<Response> {
  return fetch(`${rig!.seeder.apiUrl}/api/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': type, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body,
  })
}

describe('registry notifications', () => {
  it('are off (404) without --webhook-token-file', async () => {
    rig = await startSeederRig()
    const res = await notify('anything', JSON.stringify({ events: [] }))
    expect(res.status).toBe(404)
  })

  it('need the bearer token, refuse malformed bodies and preheat manifest pushes once', async () => {
    rig = await startSeederRig({ token: 's3cret', seederArgs: ['--notify-repositories', 'demo/*'] })
    const child = rig.image.manifests.find((m) => m.platform?.architecture === 'arm64')!
    const body = JSON.stringify(envelope('demo/multi', child.digest, child.mediaType))
    expect((await notify(undefined, body)).status).toBe(401)
    expect((await notify('wrong', body)).status).toBe(401)
    expect(rig.origin.stats.blobRequests).toBe(0)

    for (const bad of ['{nope', '[]', '{"events":"x"}', '{"events":[{"action":"push","target":{}}]}']) {
      const res = await notify('s3cret', bad)
      expect(res.status, bad).toBe(400)
      expect(typeof ((await res.json()) as { error?: unknown }).error).toBe('string')
    }
    const big = JSON.stringify({ events: [], pad: 'x'.repeat(1100 * 1024) })
    expect((await notify('s3cret', big)).status).toBe(413)

    const ok = await notify('s3cret', body)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 })
    // The flood of repeats a registry sends is dropped; the rest is not a manifest push or not ours.
    const again = await notify('s3cret', body, 'application/json')
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 1, ignored: 0 })
    const other = {
      events: [
        ...envelope('demo/multi', child.digest, child.mediaType, 'pull').events,
        ...envelope('demo/multi', rig.image.blobs[0]!.digest, 'application/octet-stream').events,
        ...envelope('other/app', child.digest, child.mediaType).events,
      ],
    }
    expect(await (await notify('s3cret', JSON.stringify(other))).json()).toEqual({
      accepted: 0,
      duplicates: 0,
      ignored: 3,
    })

    const ids = rig.seeder.preheater.jobs()
    expect(ids).toHaveLength(1)
    const job = await waitJob(rig, ids[0]!)
    expect(job.state).toBe('done')
    for (const d of platformBlobs(rig.image, 'arm64')) expect(rig.origin.stats.perBlob.get(d)?.requests).toBe(1)
    for (const d of platformBlobs(rig.image, 'amd64')) expect(rig.origin.stats.perBlob.get(d)).toBeUndefined()
  })
})

describe('parseNotification', () => {
  it('reads Harbor PUSH_ARTIFACT payloads and ignores other Harbor events', () => {
    const d = `sha256:${'b'.repeat(64)}`
    const harbor = {
      type: 'PUSH_ARTIFACT',
      event_data: { resources: [{ digest: d, tag: 'v1' }], repository: { repo_full_name: 'lib/app' } },
    }
    expect(parseNotification(harbor)).toEqual({ pushes: [{ repository: 'lib/app', digest: d }], ignored: 0 })
    expect(parseNotification({ type: 'PULL_ARTIFACT', event_data: {} })).toEqual({ pushes: [], ignored: 1 })
    expect(() => parseNotification({ type: 'PUSH_ARTIFACT', event_data: { resources: [] } })).toThrow(/repo_full_name/)
  })

  it('matches repository patterns', () => {
    const m = repositoryMatcher(['team/*', 'infra/**'])
    expect(m('team/app')).toBe(true)
    expect(m('team/a/b')).toBe(false)
    expect(m('infra/a/b')).toBe(true)
    expect(m('other')).toBe(false)
    expect(repositoryMatcher([])('anything/at/all')).toBe(true)
  })
})

import { describe, expect, it } from 'vitest'
import type { Digest } from '../../../shared/oci/index.ts'
import type { PartialBlob } from '../../../shared/store/index.ts'
import { LiveBlob } from '../../../shared/swarm/live.ts'

function blob(): LiveBlob {
  const partial = { digest: `sha256:${'0'.repeat(64)}` as Digest, size: 4096, chunkSize: 1024, chunkCount: 4 }
  return new LiveBlob(partial as unknown as PartialBlob)
}

describe('LiveBlob', () => {
  it('onNextChange calls its waiter once, on the next change, and not once taken back', () => {
    const live = blob()
    const calls: string[] = []
    live.onNextChange(() => calls.push('a'))
    const cancel = live.onNextChange(() => calls.push('b'))
    cancel()
    live.markVerified(0)
    live.markVerified(1)
    expect(calls).toEqual(['a'])
  })

  it('changed resolves on a change or an abort, and leaves no waiter behind after an abort', async () => {
    const live = blob()
    const onChange = live.changed(new AbortController().signal)
    live.markVerified(2)
    await onChange
    const ac = new AbortController()
    const onAbort = live.changed(ac.signal)
    ac.abort()
    await onAbort
    let woken = 0
    live.onNextChange(() => woken++)
    live.notify()
    live.notify()
    expect(woken).toBe(1)
  })
})

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { BenchImage } from '../../../bench/fleet/image.ts'
import { missingBlobs } from '../../../bench/fleet/rollout.ts'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const image = {
  blobs: [
    { digest: `sha256:${A}`, size: 3, mediaType: 'application/vnd.oci.image.config.v1+json' },
    { digest: `sha256:${B}`, size: 5, mediaType: 'application/vnd.oci.image.layer.v1.tar' },
  ],
} as unknown as BenchImage

describe('missingBlobs (OCI layout written by skopeo copy … oci:DEST:TAG)', () => {
  let dest: string
  beforeEach(async () => {
    dest = await mkdtemp(join(tmpdir(), 'fleet-rollout-'))
    await mkdir(join(dest, 'blobs', 'sha256'), { recursive: true })
  })
  afterEach(async () => {
    await rm(dest, { recursive: true, force: true })
  })

  it('accepts a layout holding every blob at full size', async () => {
    await writeFile(join(dest, 'blobs', 'sha256', A), 'abc')
    await writeFile(join(dest, 'blobs', 'sha256', B), 'bbbbb')
    expect(await missingBlobs(dest, image)).toBeUndefined()
  })

  it('names a missing blob and a short one', async () => {
    await writeFile(join(dest, 'blobs', 'sha256', A), 'abc')
    expect(await missingBlobs(dest, image)).toBe(`blob sha256:${B} missing`)
    await writeFile(join(dest, 'blobs', 'sha256', B), 'bb')
    expect(await missingBlobs(dest, image)).toBe(`blob sha256:${B} has 2 of 5 bytes`)
  })
})

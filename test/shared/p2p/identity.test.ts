import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { InvalidIdentityError, identityPath, loadOrCreateIdentity } from '../../../shared/p2p/index.ts'

let dataDir: string
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'shoal-identity-'))
})
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true })
})

describe('loadOrCreateIdentity', () => {
  it('creates an Ed25519 key at <dataDir>/p2p/identity.key, mode 0600, and reuses it', async () => {
    const key = await loadOrCreateIdentity(dataDir)
    expect(key.type).toBe('Ed25519')
    const path = join(dataDir, 'p2p', 'identity.key')
    expect(identityPath(dataDir)).toBe(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const bytes = await readFile(path)
    const again = await loadOrCreateIdentity(dataDir)
    expect(peerIdFromPrivateKey(again).toString()).toBe(peerIdFromPrivateKey(key).toString())
    expect(await readFile(path)).toEqual(bytes)
  })

  it('gives racing first starts one and the same key', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateIdentity(dataDir)))
    const ids = new Set(keys.map((k) => peerIdFromPrivateKey(k).toString()))
    expect(ids.size).toBe(1)
  })

  it('refuses a damaged key file instead of minting a new identity', async () => {
    const path = identityPath(dataDir)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, new Uint8Array([1, 2, 3]))
    await expect(loadOrCreateIdentity(dataDir)).rejects.toBeInstanceOf(InvalidIdentityError)
    expect(await readFile(path)).toEqual(Buffer.from([1, 2, 3]))
  })

  it('refuses an oversized key file', async () => {
    const path = identityPath(dataDir)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, new Uint8Array(1024 * 1024))
    await expect(loadOrCreateIdentity(dataDir)).rejects.toMatchObject({ code: 'P2P_IDENTITY_INVALID' })
  })
})

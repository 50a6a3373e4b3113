import { randomBytes } from 'node:crypto'
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { IDENTITY_DIR, IDENTITY_FILE, IDENTITY_FILE_MAX_BYTES } from './constants.ts'
import { InvalidIdentityError } from './errors.ts'

export function identityPath(dataDir: string): string {
  return join(dataDir, IDENTITY_DIR, IDENTITY_FILE)
}

/**
 * Loads the node's Ed25519 identity from `<dataDir>/p2p/identity.key` (libp2p protobuf form), creating it with
 * mode 0600 on first start. A damaged file is an error, not a reason to mint a new key: the peer id is what
 * other nodes trust (a seeder's signatures), so it must never change behind the operator's back.
 */
export async function loadOrCreateIdentity(
  dataDir: string,
  options: { signal?: AbortSignal } = {},
): Promise<PrivateKey> {
  const path = identityPath(dataDir)
  const existing = await readIdentity(path, options)
  if (existing !== undefined) return existing

  await mkdir(join(dataDir, IDENTITY_DIR), { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  // Write aside, then link into place: a crash never leaves a half-written key, and when two processes race
  // the loser's link fails with EEXIST and it adopts the winner's key.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx', flush: true, signal: options.signal })
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const winner = await readIdentity(path, options)
    if (winner === undefined) throw err
    return winner
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return key
}

async function readIdentity(path: string, options: { signal?: AbortSignal }): Promise<PrivateKey | undefined> {
  let size: number
  try {
    size = (await stat(path)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (size > IDENTITY_FILE_MAX_BYTES) throw new InvalidIdentityError(`identity file ${path} is too large`)
  const bytes = await readFile(path, { signal: options.signal })
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidIdentityError(`identity file ${path} is not a libp2p private key`, { cause: err })
  }
}

/**
 * Writes a fresh Ed25519 identity to `path` (libp2p protobuf form, mode 0600), never over an existing file
 * (EEXIST): operators mint a seeder's key up front, so agents can name its peer id before it first starts.
 */
export async function writeNewIdentity(path: string): Promise<PrivateKey> {
  const key = await generateKeyPair('Ed25519')
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx', flush: true })
  return key
}

/** Loads an identity file given on purpose (`--identity`): a missing file is an error, never a new key. */
export async function readIdentityFile(path: string, options: { signal?: AbortSignal } = {}): Promise<PrivateKey> {
  const key = await readIdentity(path, options)
  if (key === undefined) throw new InvalidIdentityError(`identity file ${path} does not exist`)
  return key
}

/**
 * The node's key: the `--identity` file when one is given (it wins), else the data dir's own key, created on
 * first start. When both exist and differ, `onMismatch` hears it once: the peer id others trust is the file's.
 */
export async function resolveIdentity(opts: {
  readonly dataDir: string
  readonly identityFile?: string | undefined
  readonly onMismatch?: (message: string) => void
  readonly signal?: AbortSignal
}): Promise<PrivateKey> {
  if (opts.identityFile === undefined) return loadOrCreateIdentity(opts.dataDir, { signal: opts.signal })
  const key = await readIdentityFile(opts.identityFile, { signal: opts.signal })
  const own = await readIdentity(identityPath(opts.dataDir), { signal: opts.signal }).catch(() => undefined)
  if (own !== undefined && !own.equals(key)) {
    opts.onMismatch?.(
      `the identity in ${opts.identityFile} differs from the data dir's own key ${identityPath(opts.dataDir)}: using ${opts.identityFile}`,
    )
  }
  return key
}

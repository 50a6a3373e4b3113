import { randomBytes } from 'node:crypto'
import { SWARM_KEY_BYTES, SWARM_KEY_ENCODING, SWARM_KEY_HEADER } from './constants.ts'
import { InvalidSwarmKeyError } from './errors.ts'

/** A fresh pnet v1 key file (the format go-libp2p and `@libp2p/pnet` read), with a trailing newline. */
export function generateSwarmKey(): string {
  return `${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${randomBytes(SWARM_KEY_BYTES).toString('hex')}\n`
}

/**
 * Validates swarm key file contents and returns them in the exact form `@libp2p/pnet` decodes. Checked here
 * because pnet only reports a generic error from deep inside `createLibp2p`.
 */
export function parseSwarmKey(contents: Uint8Array | string): Uint8Array {
  const text = typeof contents === 'string' ? contents : new TextDecoder('utf-8', { fatal: false }).decode(contents)
  const lines = text.trim().split(/\r\n|\r|\n/)
  const [header, encoding, key, ...rest] = lines
  if (
    header !== SWARM_KEY_HEADER ||
    encoding !== SWARM_KEY_ENCODING ||
    key === undefined ||
    !/^[0-9a-fA-F]+$/.test(key) ||
    key.length !== SWARM_KEY_BYTES * 2 ||
    rest.some((l) => l.trim() !== '')
  ) {
    throw new InvalidSwarmKeyError('swarm key is not a pnet v1 key file (/key/swarm/psk/1.0.0/, /base16/, 64 hex)')
  }
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${key.toLowerCase()}`)
}

/**
 * Messages of `/shoal/manifests/1.0.0`: JSON objects, one per length-prefixed frame, at most
 * MAX_MANIFEST_CONTROL_FRAME_BYTES; the manifest bytes follow the answer's header in a data frame.
 *
 *   request                                      response
 *   { t: 'manifest', digest, registry?, name? }  { t: 'manifest', mediaType, length } + data frame of `length` bytes
 *                                                | { t: 'none' }
 *
 * `registry` and `name` say where the asker's origin resolved the digest: a seeder that does not hold the manifest
 * pulls it by digest from there once (its own credentials, as it pulls blobs), verifies and keeps it, then answers.
 * An agent ignores them.
 *
 * Decoding validates every field; unknown fields are ignored so a later minor version can add some.
 */
import { type Digest, isDigest, isRepositoryName, MAX_MANIFEST_BYTES } from '../../oci/index.ts'
import { isRegistryHost } from '../protocol/messages.ts'
import { InvalidMessageError } from '../wire/errors.ts'
import { MAX_MANIFEST_CONTROL_FRAME_BYTES, MAX_MEDIA_TYPE_CHARS } from './constants.ts'

export interface ManifestRequest {
  readonly t: 'manifest'
  readonly digest: Digest
  /** Where the asker's origin resolved the digest (both or neither). */
  readonly registry?: string
  readonly name?: string
}

export type ManifestResponse =
  { readonly t: 'manifest'; readonly mediaType: string; readonly length: number } | { readonly t: 'none' }

// type/subtype with optional parameters, printable ASCII only: it ends up in a Content-Type header.
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;[ -~]*)?$/

const utf8Decoder = new TextDecoder('utf-8', { fatal: true })
const utf8Encoder = new TextEncoder()

function parseObject(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength > MAX_MANIFEST_CONTROL_FRAME_BYTES) {
    throw new InvalidMessageError(`control frame of ${bytes.byteLength} bytes`)
  }
  let value: unknown
  try {
    value = JSON.parse(utf8Decoder.decode(bytes))
  } catch (err) {
    throw new InvalidMessageError('control frame is not UTF-8 JSON', { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError('control frame is not a JSON object')
  }
  return value as Record<string, unknown>
}

export function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_MEDIA_TYPE_CHARS && MEDIA_TYPE_RE.test(value)
}

export function encodeManifestRequest(req: ManifestRequest): Uint8Array {
  const where = req.registry === undefined || req.name === undefined ? {} : { registry: req.registry, name: req.name }
  return utf8Encoder.encode(JSON.stringify({ t: req.t, digest: req.digest, ...where }))
}

export function decodeManifestRequest(bytes: Uint8Array): ManifestRequest {
  const o = parseObject(bytes)
  if (o['t'] !== 'manifest') throw new InvalidMessageError(`unknown request type ${JSON.stringify(o['t'])}`)
  const digest = o['digest']
  if (typeof digest !== 'string' || !isDigest(digest)) throw new InvalidMessageError('request without a valid digest')
  const { registry, name } = o
  if (registry === undefined && name === undefined) return { t: 'manifest', digest }
  if (typeof registry !== 'string' || !isRegistryHost(registry)) throw new InvalidMessageError('invalid registry')
  if (typeof name !== 'string' || !isRepositoryName(name)) throw new InvalidMessageError('invalid repository name')
  return { t: 'manifest', digest, registry, name }
}

export function encodeManifestResponse(res: ManifestResponse): Uint8Array {
  const body = res.t === 'none' ? { t: 'none' } : { t: 'manifest', mediaType: res.mediaType, length: res.length }
  return utf8Encoder.encode(JSON.stringify(body))
}

export function decodeManifestResponse(bytes: Uint8Array): ManifestResponse {
  const o = parseObject(bytes)
  if (o['t'] === 'none') return { t: 'none' }
  if (o['t'] !== 'manifest') throw new InvalidMessageError(`unknown response type ${JSON.stringify(o['t'])}`)
  const { mediaType, length } = o
  if (!isMediaType(mediaType)) throw new InvalidMessageError('answer without a valid media type')
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > MAX_MANIFEST_BYTES) {
    throw new InvalidMessageError(`manifest length ${String(length)} outside 0..${MAX_MANIFEST_BYTES}`)
  }
  return { t: 'manifest', mediaType, length }
}

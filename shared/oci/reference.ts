import { isDigest } from './digest.ts'
import { InvalidNameError, RegistryError } from './errors.ts'

// Grammar from the OCI Distribution Spec. Anything outside it (percent-encoding, `..`, empty
// components, upper case) is rejected before it can reach a handler, a cache key or the filesystem.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/
const NAME_MAX_LENGTH = 255

export function isRepositoryName(value: string): boolean {
  return value.length <= NAME_MAX_LENGTH && NAME_RE.test(value)
}

export function parseRepositoryName(value: string): string {
  if (!isRepositoryName(value)) throw new InvalidNameError(value)
  return value
}

export function isTag(value: string): boolean {
  return TAG_RE.test(value)
}

/** A manifest reference: a tag or a digest. */
export type Reference =
  { readonly kind: 'tag'; readonly tag: string } | { readonly kind: 'digest'; readonly digest: string }

export function parseReference(value: string): Reference {
  if (isDigest(value)) return { kind: 'digest', digest: value }
  if (value.includes(':'))
    throw new RegistryError('DIGEST_INVALID', 'invalid digest', { detail: { reference: value.slice(0, 200) } })
  if (isTag(value)) return { kind: 'tag', tag: value }
  throw new RegistryError('MANIFEST_INVALID', 'invalid tag', {
    status: 400,
    detail: { reference: value.slice(0, 200) },
  })
}

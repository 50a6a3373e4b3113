import { ConfigError } from './load.ts'

/** A site name: what a Kubernetes zone label may hold (letters, digits, `.`, `_`, `-`; at most 63). */
const SITE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/

/** Whether `value` is a well-formed site name (what `--site` accepts, and what a peer may claim on the wire). */
export function isSiteName(value: string): boolean {
  return SITE_NAME.test(value)
}

/** `--site` checked: undefined or empty (an unlabelled node's empty zone) means no site. */
export function siteOf(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined
  if (!SITE_NAME.test(raw))
    throw new ConfigError('site', `expected letters, digits, '.', '_' or '-' (at most 63), got ${JSON.stringify(raw)}`)
  return raw
}

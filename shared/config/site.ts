import { ConfigError, type OptionSpec } from './load.ts'

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

/** The edge-site options, the same on agent and seeder (spread into both option tables). */
export const SITE_CONFIG_OPTIONS = {
  site: {
    type: 'string',
    flag: 'site',
    describe: 'edge site this node is in (e.g. its zone): chunks cross into a site once; none = one flat swarm',
  },
  wanUploadRate: {
    type: 'rate',
    flag: 'wan-upload-rate',
    default: 0,
    describe: 'cap on bytes to peers of other sites, on top of --upload-rate (0 = none)',
  },
  wanDownloadRate: {
    type: 'rate',
    flag: 'wan-download-rate',
    default: 0,
    describe: 'cap on bytes from other sites and an origin outside this site, on top of the other caps (0 = none)',
  },
} as const satisfies Record<string, OptionSpec>

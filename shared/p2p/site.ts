import { isSiteName } from '../config/site.ts'

/**
 * A node's site also travels in its libp2p user agent (identify's `agentVersion`), so every peer that connects
 * learns it at once, before any `have`: a seeder picking agents of one site for a preheat reads it there.
 * Like the site in `have`, it is the peer's word: it steers who is asked for what, never what is accepted.
 */
const SITE_TOKEN = 'site/'
const USER_AGENT = 'shoal'

/** The user agent a node announces: `shoal`, plus ` site/<name>` with a site. */
export function userAgentFor(site: string | undefined): string {
  return site === undefined ? USER_AGENT : `${USER_AGENT} ${SITE_TOKEN}${site}`
}

/** The site a peer's user agent names; undefined for none, another program's agent, or a malformed name. */
export function siteFromUserAgent(userAgent: string | undefined): string | undefined {
  if (userAgent === undefined) return undefined
  const words = userAgent.split(' ')
  if (words[0] !== USER_AGENT) return undefined
  const token = words.find((w) => w.startsWith(SITE_TOKEN))
  const site = token?.slice(SITE_TOKEN.length)
  return site !== undefined && isSiteName(site) ? site : undefined
}

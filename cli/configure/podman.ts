import { parse, stringify } from 'smol-toml'
import { ConfigureError } from './errors.ts'
import type { DesiredFile } from './files.ts'
import { mirrorPathComponent } from './registry-host.ts'

export const REGISTRIES_CONF = 'etc/containers/registries.conf'

export interface PodmanOptions {
  readonly registries: readonly string[]
  readonly mirror: URL
  /** `etc/containers/registries.conf` as it is now, undefined when there is none. */
  readonly registriesConf: string | undefined
}

export interface PodmanPlan {
  readonly files: readonly DesiredFile[]
  readonly notes: readonly string[]
}

interface MirrorEntry {
  location?: unknown
  insecure?: unknown
  [k: string]: unknown
}
interface RegistryEntry {
  prefix?: unknown
  location?: unknown
  mirror?: MirrorEntry[]
  [k: string]: unknown
}

/**
 * A `[[registry]]` per registry whose first mirror is the agent, at a location that names the registry
 * (`127.0.0.1:5000/ghcr.io`): podman, CRI-O, buildah and skopeo send no `?ns=`, so the path tells the agent
 * which upstream to use. Entries already there keep their other settings and mirrors.
 */
export function podmanPlan(opts: PodmanOptions): PodmanPlan {
  const text = opts.registriesConf ?? ''
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (err) {
    throw new ConfigureError(`/${REGISTRIES_CONF} is not valid TOML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (doc['registries'] !== undefined) {
    throw new ConfigureError(
      `/${REGISTRIES_CONF} is in the old v1 format ([registries.search]): convert it to v2 first`,
    )
  }
  if (doc['registry'] !== undefined && !Array.isArray(doc['registry'])) {
    throw new ConfigureError(`/${REGISTRIES_CONF}: registry is not an array of tables`)
  }
  const entries = (doc['registry'] ?? []) as RegistryEntry[]
  const insecure = opts.mirror.protocol === 'http:'
  const appended: RegistryEntry[] = []
  let edited = false
  for (const host of opts.registries) {
    const location = `${opts.mirror.host}/${mirrorPathComponent(host)}`
    const ours: MirrorEntry = insecure ? { location, insecure: true } : { location }
    const entry = entries.find((e) => (e.prefix ?? e.location) === host)
    if (entry === undefined) {
      appended.push({ prefix: host, location: host, mirror: [ours] })
      continue
    }
    const mirrors = entry.mirror ?? []
    if (mirrors[0]?.location === location && (mirrors[0].insecure === true) === insecure) continue
    // Ours goes first (podman tries mirrors in order, then the registry itself); an older copy of it goes.
    entry.mirror = [ours, ...mirrors.filter((m) => m.location !== location)]
    edited = true
  }
  const notes = [`podman reads /${REGISTRIES_CONF} (or CONTAINERS_REGISTRIES_CONF); skopeo 1.9 needs --registries-conf`]
  if (!edited && appended.length === 0) {
    return { files: [{ path: REGISTRIES_CONF, content: Buffer.from(text) }], notes }
  }
  let out: string
  if (!edited) {
    // Only new tables: append them, so the file keeps its comments and layout.
    const sep = text === '' || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n'
    out = `${text}${sep}# Written by \`shoal configure podman\`: pulls try the Shoal agent first.\n${stringify({ registry: appended })}\n`
  } else {
    doc['registry'] = [...entries, ...appended]
    out = `${stringify(doc)}\n`
    notes.push(`/${REGISTRIES_CONF} was rewritten to change existing [[registry]] entries: its comments are not kept`)
  }
  return { files: [{ path: REGISTRIES_CONF, content: Buffer.from(out) }], notes }
}

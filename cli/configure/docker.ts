import { ConfigureError } from './errors.ts'
import type { DesiredFile } from './files.ts'
import { mirrorOrigin } from './registry-host.ts'

export const DAEMON_JSON = 'etc/docker/daemon.json'

export interface DockerOptions {
  readonly mirror: URL
  /** `etc/docker/daemon.json` as it is now, undefined when there is none. */
  readonly daemonJson: string | undefined
}

export interface DockerPlan {
  readonly files: readonly DesiredFile[]
  readonly notes: readonly string[]
}

/** `registry-mirrors` in daemon.json with the agent first; every other key is kept as it is. */
export function dockerPlan(opts: DockerOptions): DockerPlan {
  const mirror = mirrorOrigin(opts.mirror)
  const notes = [
    'Docker sends only Docker Hub pulls to a mirror, and without naming the registry: the agent serves them from ' +
      'its --origin, which must be Docker Hub (its default) or a registry holding the same repositories',
    'restart dockerd (or send it SIGHUP) to apply registry-mirrors',
  ]
  let doc: Record<string, unknown> = {}
  if (opts.daemonJson !== undefined && opts.daemonJson.trim() !== '') {
    try {
      doc = JSON.parse(opts.daemonJson) as Record<string, unknown>
    } catch (err) {
      throw new ConfigureError(`/${DAEMON_JSON} is not valid JSON: ${(err as Error).message}`)
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new ConfigureError(`/${DAEMON_JSON} is not a JSON object`)
    }
  }
  const current = doc['registry-mirrors']
  if (current !== undefined && (!Array.isArray(current) || current.some((m) => typeof m !== 'string'))) {
    throw new ConfigureError(`/${DAEMON_JSON}: registry-mirrors is not a list of URLs`)
  }
  const mirrors = (current ?? []) as string[]
  // Docker normalises each mirror to end in `/`: the same agent either way.
  if (mirrors.some((m) => m.replace(/\/+$/, '') === mirror)) {
    return { files: [{ path: DAEMON_JSON, content: Buffer.from(opts.daemonJson!) }], notes }
  }
  doc['registry-mirrors'] = [mirror, ...mirrors]
  if (opts.mirror.protocol === 'http:' && !isLoopback(opts.mirror.hostname)) {
    notes.push(`${mirror} is plain http and not loopback: Docker also needs it in insecure-registries`)
  }
  return { files: [{ path: DAEMON_JSON, content: Buffer.from(`${JSON.stringify(doc, null, 2)}\n`) }], notes }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host)
}

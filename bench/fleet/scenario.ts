import type { BenchConfig, ScenarioName } from './config.ts'
import type { Fleet } from './fleet.ts'
import type { BenchImage } from './image.ts'
import type { Command, HostPlan } from './netns.ts'
import type { Daemon } from '../../harness/daemon.ts'
import type { RunResult } from './proc.ts'

/** What a scenario gets from the harness. Everything it starts through `daemon` is stopped after teardown. */
export interface ScenarioContext {
  readonly fleet: Fleet
  readonly image: BenchImage
  /** `169.254.1.1:5000` */
  readonly originHost: string
  /** `http://169.254.1.1:5000` */
  readonly originUrl: string
  readonly config: BenchConfig
  /** A fresh, empty folder for this scenario's state (caches, data dirs, logs); removed afterwards. */
  readonly dir: string
  /** Where `node`'s client writes the pulled image (an OCI layout); must not exist yet. */
  pullDest(node: HostPlan): string
  readonly signal: AbortSignal
  /** Starts `cmd args` inside `host`'s namespace, its output in `<dir>/<name>.log`. */
  daemon(host: HostPlan, name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Daemon
  /** Runs `cmd args` inside `host`'s namespace to completion. */
  run(host: HostPlan, cmd: string, args: readonly string[], timeoutMs?: number): Promise<RunResult>
  /** GETs `url` from inside `host`'s namespace, retrying up to `waitMs` until it answers 2xx; the body. */
  probe(host: HostPlan, url: string, waitMs: number): Promise<string>
  log(message: string): void
}

/**
 * One way of rolling the image out to every node. The harness wipes all state between scenarios, counts
 * link bytes around `setup` and the rollout, and runs every node's `pull` command at the same moment.
 */
export interface Scenario {
  readonly name: ScenarioName
  readonly title: string
  /** Why the scenario cannot run on this checkout, or undefined when it can. Called before `setup`. */
  unavailable(ctx: ScenarioContext): Promise<string | undefined>
  /** Starts what the rollout needs (and, for a preheated run, warms it). Not timed as part of the rollout. */
  setup(ctx: ScenarioContext): Promise<void>
  /** The command, run inside `node`'s namespace, that pulls the image into `ctx.pullDest(node)`. */
  pull(node: HostPlan, ctx: ScenarioContext): Command
  teardown(ctx: ScenarioContext): Promise<void>
}

/** Environment for every pull: no stored logins may leak into a pull, and none are needed. */
export const PULL_ENV = {
  REGISTRY_AUTH_FILE: '/nonexistent/shoal-bench-auth.json',
} as const

/**
 * `skopeo copy` of the image from `registry` (plain HTTP) into an OCI layout folder. Not `dir:`: that
 * destination is not thread-safe, so skopeo copies its layers one after the other, while `oci:` (like
 * containerd and podman) fetches them in parallel. Uncompressed layers are accepted as they are: otherwise
 * skopeo gzips them on the way in, spending the CPU the fleet needs and writing blobs with other digests. skopeo 1.9.3 ignores CONTAINERS_REGISTRIES_CONF, so the
 * machine's registries.conf is kept out with a flag.
 */
export function skopeoPull(registry: string, image: { name: string; tag: string }, dest: string): Command {
  return {
    cmd: 'skopeo',
    args: ['--insecure-policy', '--registries-conf', '/dev/null', 'copy', '--quiet']
      .concat(['--src-tls-verify=false', '--src-no-creds', '--dest-oci-accept-uncompressed-layers'])
      .concat([`docker://${registry}/${image.name}:${image.tag}`, `oci:${dest}:${image.tag}`]),
  }
}

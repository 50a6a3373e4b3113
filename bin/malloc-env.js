// Plain JavaScript, run before any TypeScript is loaded: it decides whether `bin/shoal.js` restarts itself.

/**
 * glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and an arena once grown is
 * rarely given back: a long-lived `shoal agent` or `shoal seeder` (libuv's pool, V8's helper threads, the hashing
 * threads) held ~9 MiB more RSS at idle than with a single arena, measured by bench/datapath. Those services restart
 * once, in the same process (`process.execve`, same pid), with `glibc.malloc.arena_max=1`; glibc reads its tunables
 * only when a program starts. Other allocators ignore the variable.
 */
export const MALLOC_TUNABLE = 'glibc.malloc.arena_max=1'

/** The commands that run for long enough to be worth it. */
const SERVICES = new Set(['agent', 'seeder'])

/**
 * The environment to restart `shoal` with, or undefined to go on as it is: not a service, not Linux, no
 * `process.execve` (Node < 23.11), or the arena limit is set already (by the restart, or by the user).
 */
export function mallocRestartEnv(args, env, platform, canExec) {
  if (!canExec || platform !== 'linux' || !SERVICES.has(args[0])) return undefined
  const tunables = env.GLIBC_TUNABLES ?? ''
  if (tunables.includes('glibc.malloc.arena_max')) return undefined
  return { ...env, GLIBC_TUNABLES: tunables === '' ? MALLOC_TUNABLE : `${tunables}:${MALLOC_TUNABLE}` }
}

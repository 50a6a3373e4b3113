#!/usr/bin/env node
// The `shoal` command. Node 24 runs the TypeScript sources directly (type stripping),
// so `npx shoal` works right after `npm ci` with no build step.
import nodeModule from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { mallocRestartEnv } from './malloc-env.js'
import { nodeVersionProblem } from './node-version.js'

const problem = nodeVersionProblem(process.version)
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`)
  process.exit(2)
}
// A service restarts once with glibc's malloc held to one arena (see malloc-env.js); nothing is loaded yet, so
// this costs one bare Node start-up. The same pid, arguments and Node flags (a profiler's included).
const restartEnv = mallocRestartEnv(
  process.argv.slice(2),
  process.env,
  process.platform,
  typeof process.execve === 'function',
)
if (restartEnv !== undefined) {
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], restartEnv)
  } catch {
    // The restart is only a saving: without it the service runs with glibc's default arenas.
  }
}
// Stripping the types of every source file loads a WebAssembly compiler whose memory is never given back
// (about 45 MiB of every process's RSS, measured by bench/datapath). With the stripped sources cached on disk,
// a start after the first loads none of it. Under the user's own home, not a shared temp dir: the cache is
// code this process runs. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
try {
  // A default import: an older Node, which lacks it, must still reach the version check above.
  nodeModule.enableCompileCache(join(homedir(), '.cache', 'shoal', 'compile-cache'))
} catch {
  // No writable home: run without the cache.
}
// Imported only now: an older Node fails on the .ts import before any check could run.
const { main } = await import('../cli/main.ts')

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code
  },
  (err) => {
    process.stderr.write(`shoal: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)

#!/usr/bin/env node
// The `shoal` command. Node 24 runs the TypeScript sources directly (type stripping),
// so `npx shoal` works right after `npm ci` with no build step.
import nodeModule from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { nodeVersionProblem } from './node-version.js'

const problem = nodeVersionProblem(process.version)
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`)
  process.exit(2)
}
// The long-running services start again in this same process (execve: same pid, same stdio) with a young
// generation capped at 4 MiB per semi-space: V8 otherwise grows it to 16 MiB each under start-up allocation and
// keeps it, ~20 MiB of an idle agent's RSS (measured by bench/datapath; 1 MiB saved only a few MiB more, with more
// scavenges on the data path). A flag V8 reads only at start. A flag the user gave (command line or NODE_OPTIONS)
// wins.
const SERVICE_NODE_FLAGS = ['--max-semi-space-size=4']
if (
  (process.argv[2] === 'agent' || process.argv[2] === 'seeder') &&
  typeof process.execve === 'function' &&
  ![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
    a.startsWith('--max-semi-space-size'),
  )
) {
  const argv = [process.execPath, ...SERVICE_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)]
  process.execve(process.execPath, argv, process.env)
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

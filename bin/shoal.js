#!/usr/bin/env node
// The `shoal` command. Node 24 runs the TypeScript sources directly (type stripping),
// so `npx shoal` works right after `npm ci` with no build step.
import { enableCompileCache } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'

// Stripping the types of every source file loads a WebAssembly compiler whose memory is never given back
// (about 45 MiB of every process's RSS, measured by bench/datapath). With the stripped sources cached on disk,
// a start after the first loads none of it. Under the user's own home, not a shared temp dir: the cache is
// code this process runs. NODE_DISABLE_COMPILE_CACHE=1 turns it off.
try {
  enableCompileCache(join(homedir(), '.cache', 'shoal', 'compile-cache'))
} catch {
  // No writable home: run without the cache.
}
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

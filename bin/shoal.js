#!/usr/bin/env node
// The `shoal` command. Node 24 runs the TypeScript sources directly (type stripping),
// so `npx shoal` works right after `npm ci` with no build step.
import { main } from '../cli/main.ts'

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code
  },
  (err) => {
    process.stderr.write(`shoal: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)

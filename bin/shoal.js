#!/usr/bin/env node
// The `shoal` command. Node 24 runs the TypeScript sources directly (type stripping),
// so `npx shoal` works right after `npm ci` with no build step.
import { nodeVersionProblem } from './node-version.js'

const problem = nodeVersionProblem(process.version)
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`)
  process.exit(2)
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

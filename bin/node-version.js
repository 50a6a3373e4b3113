// Plain JavaScript that any Node runs: the check must come before the first TypeScript import, which
// Node older than 24 cannot load (it would die with a raw "Unknown file extension .ts").

/** The Node major version Shoal runs on (package.json "engines"). */
export const MIN_NODE_MAJOR = 24

/** undefined when `version` (like process.version) can run Shoal, else the one line to print. */
export function nodeVersionProblem(version) {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1])
  if (major >= MIN_NODE_MAJOR) return undefined
  return (
    `shoal: needs Node.js ${MIN_NODE_MAJOR} or later, this is ${version}; ` +
    "run it with the project's own Node: npx shoal …, or /opt/shoal/node_modules/.bin/node /opt/shoal/bin/shoal.js …"
  )
}

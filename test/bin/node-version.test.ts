import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { MIN_NODE_MAJOR, nodeVersionProblem } from '../../bin/node-version.js'

const SHOAL = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))
/** The system's Node (Debian's is older than 24), not the project's. */
const SYSTEM_NODE = '/usr/bin/node'

describe('bin/shoal.js Node version check', () => {
  it('refuses Node older than 24 in one line, accepts 24 and later', () => {
    expect(MIN_NODE_MAJOR).toBe(24)
    for (const v of ['v18.19.0', 'v20.20.2', 'v23.11.1']) {
      const line = nodeVersionProblem(v)!
      expect(line).toMatch(new RegExp(`^shoal: needs Node\\.js 24 or later, this is ${v.replaceAll('.', '\\.')}; `))
      expect(line).not.toContain('\n')
    }
    for (const v of ['v24.0.0', 'v24.9.0', 'v25.1.0', process.version]) expect(nodeVersionProblem(v)).toBeUndefined()
  })

  it("run by the system's Node: one clear line and exit 2 when it is older, the CLI when it is not", async () => {
    const r = await promisify(execFile)(SYSTEM_NODE, [SHOAL, 'help']).then(
      (ok) => ({ code: 0, ...ok }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    )
    const { stdout: version } = await promisify(execFile)(SYSTEM_NODE, ['--version'])
    if (nodeVersionProblem(version.trim()) === undefined) {
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('shoal')
    } else {
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toBe(`${nodeVersionProblem(version.trim())}\n`)
    }
  })
})

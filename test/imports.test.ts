import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PRODUCT = ['agent', 'seeder', 'shared', 'cli']
const BENCH = ['bench']

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'results') out.push(...tsFiles(path))
    } else if (e.name.endsWith('.ts')) {
      out.push(path)
    }
  }
  return out
}

// Static imports, re-exports, dynamic import() and import.meta-relative URLs: every way a file reaches another.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bnew URL\(\s*)(['"])(\.{1,2}\/[^'"]*)\1/g

/** The top-level folder of every file `file` reaches by a relative specifier. */
function reachedFolders(file: string, text: string): { specifier: string; folder: string }[] {
  const out: { specifier: string; folder: string }[] = []
  for (const m of text.matchAll(SPECIFIER)) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), m[2]!))
    out.push({ specifier: m[2]!, folder: target.split(/[\\/]/)[0]! })
  }
  return out
}

function offenders(dirs: readonly string[], forbidden: readonly string[]): string[] {
  const out: string[] = []
  for (const file of dirs.flatMap(tsFiles)) {
    for (const { specifier, folder } of reachedFolders(file, readFileSync(join(ROOT, file), 'utf8'))) {
      if (forbidden.includes(folder)) out.push(`${file}: ${specifier}`)
    }
  }
  return out
}

describe('import boundaries', () => {
  it('the scanner sees every form of import', () => {
    const text = [
      "import { a } from '../../test/x.ts'",
      "export { b } from '../../test/y.ts'",
      "const c = await import('../../test/z.ts')",
      "import '../../test/side-effect.ts'",
      "const u = new URL('../../test/file', import.meta.url)",
      "import { d } from '../sim/model.ts'",
      "import { e } from 'node:test'",
    ].join('\n')
    expect(reachedFolders('bench/swarm/main.ts', text).map((r) => r.folder)).toEqual([
      'test',
      'test',
      'test',
      'test',
      'test',
      'bench',
    ])
  })

  it('the product (agent, seeder, shared, cli) never imports test/, harness/ or bench/', () => {
    expect(offenders(PRODUCT, ['test', 'harness', 'bench'])).toEqual([])
  })

  it('bench never imports test/ (what both need lives in harness/ or shared/)', () => {
    expect(offenders(BENCH, ['test'])).toEqual([])
  })
})

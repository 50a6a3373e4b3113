import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The bulk path sits below the chunk protocol: protocol offers bulk tickets and routes chunks over it, so bulk
// may not import protocol back. What both need (serving a chunk, upload slots, errors, deadlines) lives below
// both. This walks the import statements (`import type` included: a type cycle still ties the modules together).

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const SWARM = join(ROOT, 'shared/swarm')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** Relative imports of one file, resolved to absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specs = [
    ...text.matchAll(/^(?:import|export)\s+[\w$*{},\s]+?\s+from\s+'([^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'([^']+)'/gm),
  ].map((m) => m[1]!)
  return specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s))
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>()
  for (const f of sources(SWARM)) g.set(f, importsOf(f))
  return g
}

const name = (f: string): string => relative(ROOT, f)
const inArea = (area: string) => (f: string) => f.startsWith(join(SWARM, area) + '/')

/** Every import path from a file matching `from` to a file matching `to`, as a list of files (shortest first). */
function paths(g: Map<string, string[]>, from: (f: string) => boolean, to: (f: string) => boolean): string[][] {
  const found: string[][] = []
  for (const start of [...g.keys()].filter(from)) {
    const prev = new Map<string, string>([[start, '']])
    const queue = [start]
    while (queue.length > 0) {
      const f = queue.shift()!
      if (to(f)) {
        const path = [f]
        for (let p = prev.get(f)!; p !== ''; p = prev.get(p)!) path.unshift(p)
        found.push(path.map(name))
        continue
      }
      for (const n of g.get(f) ?? []) {
        if (prev.has(n)) continue
        prev.set(n, f)
        queue.push(n)
      }
    }
  }
  return found
}

/** Strongly connected components of more than one file (import cycles). */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) out.push(scc.map(name).sort())
    }
  }
  for (const v of g.keys()) if (!index.has(v)) visit(v)
  return out
}

describe('shared/swarm layering', () => {
  it('reads the imports it checks', () => {
    const g = graph()
    // The walk must see the edges it is about, or an empty graph would pass.
    expect(g.get(join(SWARM, 'protocol/server.ts'))).toContain(join(SWARM, 'bulk/server.ts'))
    expect(g.get(join(SWARM, 'protocol/index.ts'))).toContain(join(SWARM, 'protocol/client.ts'))
  })

  it('bulk imports nothing of protocol, directly or through another module', () => {
    expect(paths(graph(), inArea('bulk'), inArea('protocol'))).toEqual([])
  })

  it('has no import cycle that spans protocol and bulk', () => {
    const spanning = cycles(graph()).filter(
      (c) => c.some((f) => f.startsWith('shared/swarm/bulk/')) && c.some((f) => f.startsWith('shared/swarm/protocol/')),
    )
    expect(spanning).toEqual([])
  })
})

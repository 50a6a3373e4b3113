import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// One lifecycle vocabulary in the product: a part that runs has start()/stop() (as js-libp2p). close() is left to
// what models a file handle: a file closes, a service stops.
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PRODUCT = ['agent', 'seeder', 'shared']

/** `file: owner` pairs allowed a close() of their own, each modelling a file handle. */
const FILE_HANDLES = new Set([
  // Positional reads and writes of one open file, the store's storage medium (node's FileHandle, or bytes).
  'shared/store/backend.ts: RandomAccessFile',
  'shared/store/fs-backend.ts: FileHandleFile',
  'shared/store/memory-store.ts: MemoryFile',
  // A download's open file: close() lets go of it (its state becomes 'closed') and the store reopens it later.
  'shared/store/partial.ts: StorePartial',
])

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...tsFiles(path))
    else if (e.name.endsWith('.ts')) out.push(path)
  }
  return out
}

/** Every `close` a class, interface, type literal or object literal in `text` declares, as `file: owner`. */
export function closeMembers(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const out: string[] = []
  const ownerOf = (node: ts.Node): string => {
    const parent = node.parent
    if ((ts.isClassLike(parent) || ts.isInterfaceDeclaration(parent)) && parent.name !== undefined)
      return parent.name.text
    if (ts.isTypeLiteralNode(parent) && ts.isTypeAliasDeclaration(parent.parent)) return parent.parent.name.text
    return `line ${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
  }
  const visit = (node: ts.Node): void => {
    const named =
      ts.isMethodDeclaration(node) ||
      ts.isMethodSignature(node) ||
      ts.isPropertyDeclaration(node) ||
      ts.isPropertySignature(node) ||
      ts.isPropertyAssignment(node) ||
      ts.isShorthandPropertyAssignment(node)
    if (named && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name)) && node.name.text === 'close')
      out.push(`${file}: ${ownerOf(node)}`)
    ts.forEachChild(node, visit)
  }
  visit(source)
  return out
}

describe('lifecycle vocabulary', () => {
  it('the scanner finds close in classes, interfaces, type literals and object literals', () => {
    const text = [
      'class A { async close() {} #close() {} stop() {} }',
      'interface B { close(): Promise<void> }',
      'type C = { close: () => void }',
      'const d = { close: () => {} }',
      'const e = { close }',
      'function f(x: { close(): void }) { x.close() }',
    ].join('\n')
    expect(closeMembers('x.ts', text)).toEqual([
      'x.ts: A',
      'x.ts: B',
      'x.ts: C',
      'x.ts: line 4',
      'x.ts: line 5',
      'x.ts: line 6',
    ])
  })

  it('no part under agent/, seeder/ or shared/ has a close() of its own, only file handles', () => {
    const found = PRODUCT.flatMap(tsFiles).flatMap((f) => closeMembers(f, readFileSync(join(ROOT, f), 'utf8')))
    expect(found.filter((m) => !FILE_HANDLES.has(m))).toEqual([])
    // An entry that no longer matches anything is dropped, so the list never allows more than it says.
    expect([...FILE_HANDLES].filter((m) => !found.includes(m))).toEqual([])
  })
})

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll } from 'vitest'
import { type DemoOrigin, generateSampleImage, type SampleImage, startDemoOrigin } from '../shared/sample/index.ts'
import { previousMainTree, type ShoalTree } from './previous-main.ts'
import { type ShoalNode, startShoalNode } from './shoal-node.ts'

/** One compat test's world: a temp dir, a sample image served by a demo origin, and nodes of either tree. */
export interface CompatWorld {
  readonly dir: string
  readonly image: SampleImage
  readonly origin: DemoOrigin
  /** Starts a node of `tree`; it is stopped after the test. */
  start(tree: ShoalTree, kind: 'agent' | 'seeder', args: readonly string[]): Promise<ShoalNode>
}

/**
 * What every compat test file starts from (call it at the top of the file): the previous main, materialised once
 * before the file's tests (never a skip: without its commit in the clone the test fails with what to run), and
 * per test a world whose nodes, origin and files are gone after it.
 */
export function compatSuite(): {
  previous: () => ShoalTree
  world: (o: { readonly seed: string; readonly layerBytes: number }) => Promise<CompatWorld>
} {
  let cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {})
    cleanup = []
  })
  let previous: ShoalTree | undefined
  beforeAll(async () => {
    previous = await previousMainTree()
  })
  return {
    previous: () => previous!,
    async world({ seed, layerBytes }) {
      const dir = await mkdtemp(join(tmpdir(), `shoal-${seed}-`))
      cleanup.push(() => rm(dir, { recursive: true, force: true }))
      const image = await generateSampleImage({ dir: join(dir, 'image'), layers: 3, layerBytes, seed })
      const origin = await startDemoOrigin({ images: [{ name: 'demo/app', tag: 'v1', image }] })
      cleanup.push(() => origin.stop())
      const nodes: ShoalNode[] = []
      cleanup.push(() => Promise.all(nodes.map((n) => n.stop())))
      const start = async (tree: ShoalTree, kind: 'agent' | 'seeder', args: readonly string[]) => {
        const n = await startShoalNode(tree, kind, args)
        nodes.push(n)
        return n
      }
      return { dir, image, origin, start }
    },
  }
}

import { describe, expect, it } from 'vitest'
import { type HeapSnapshot, heapLines, summarizeHeap } from '../../../bench/datapath/heap.ts'

// node_fields: type, name, id, self_size (the real meta has more; the summary looks fields up by name)
const snap: HeapSnapshot = {
  snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size'], node_types: [['hidden', 'string', 'code']] } },
  strings: ['(root)', 'export const a = 1\n// a module source', 'BytecodeArray'],
  nodes: [0, 0, 1, 0, 1, 1, 2, 3000, 1, 1, 3, 1000, 2, 2, 4, 500],
}

describe('summarizeHeap', () => {
  const s = summarizeHeap(snap)
  it('adds self sizes by type and by type and name', () => {
    expect(s.totalBytes).toBe(4500)
    expect(s.byType).toEqual([
      { type: 'string', bytes: 4000 },
      { type: 'code', bytes: 500 },
      { type: 'hidden', bytes: 0 },
    ])
    expect(s.top[0]).toEqual({ group: 'string: export const a = 1 // a module source', bytes: 4000, count: 2 })
  })
  it('refuses a snapshot without the fields it needs', () => {
    const bad = { ...snap, snapshot: { meta: { node_fields: ['type'], node_types: [['x']] } } }
    expect(() => summarizeHeap(bad)).toThrow()
  })
  it('renders a table', () => {
    expect(heapLines('agent', s).join('\n')).toContain('| 0.0 | 2 | `string: export const a = 1 // a module source` |')
  })
})

/**
 * Summary of a V8 `.heapsnapshot` (what `node --heapsnapshot-signal` writes): self size by node type and the largest
 * groups by type and name, to see what an idle process holds. Pure: give it the parsed JSON.
 */

export interface HeapSnapshot {
  readonly snapshot: {
    readonly meta: { readonly node_fields: readonly string[]; readonly node_types: readonly unknown[] }
  }
  readonly nodes: readonly number[]
  readonly strings: readonly string[]
}

export interface HeapSummary {
  readonly totalBytes: number
  readonly byType: readonly { readonly type: string; readonly bytes: number }[]
  /** `type: name` (names cut to 60 characters: a module's source text is a string node named by its text). */
  readonly top: readonly { readonly group: string; readonly bytes: number; readonly count: number }[]
}

export function summarizeHeap(snap: HeapSnapshot, topN = 12): HeapSummary {
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0] as readonly string[]
  const width = fields.length
  const [ti, ni, si] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')]
  if (ti === -1 || ni === -1 || si === -1) throw new Error('heap snapshot without type, name or self_size')
  const byType = new Map<string, number>()
  const groups = new Map<string, { bytes: number; count: number }>()
  let total = 0
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + ti]!] ?? 'unknown'
    const bytes = snap.nodes[i + si]!
    total += bytes
    byType.set(type, (byType.get(type) ?? 0) + bytes)
    const name = (snap.strings[snap.nodes[i + ni]!] ?? '').replace(/\s+/g, ' ').slice(0, 60)
    const key = `${type}: ${name}`
    const g = groups.get(key) ?? { bytes: 0, count: 0 }
    g.bytes += bytes
    g.count++
    groups.set(key, g)
  }
  return {
    totalBytes: total,
    byType: [...byType].sort((a, b) => b[1] - a[1]).map(([type, bytes]) => ({ type, bytes })),
    top: [...groups]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, topN)
      .map(([group, g]) => ({ group, ...g })),
  }
}

export function heapLines(title: string, s: HeapSummary): string[] {
  const mib = (b: number) => (b / 1024 ** 2).toFixed(1)
  return [
    `**${title}**: ${mib(s.totalBytes)} MiB of V8 heap objects`,
    '',
    `- by type: ${s.byType
      .slice(0, 8)
      .map((t) => `${t.type} ${mib(t.bytes)}`)
      .join(', ')} MiB`,
    '',
    '| MiB | objects | type: name |',
    '| ---: | ---: | --- |',
    ...s.top.map(
      (g) => `| ${mib(g.bytes)} | ${g.count} | \`${g.group.replaceAll('|', '\\|').replaceAll('`', "'")}\` |`,
    ),
    '',
  ]
}

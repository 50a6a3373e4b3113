/** A unified diff of two texts (whole-file hunk context of 3 lines), for `--dry-run`. Files here are small. */
export function unifiedDiff(path: string, before: string | undefined, after: string | undefined): string {
  const a = splitLines(before)
  const b = splitLines(after)
  const ops = lineOps(a, b)
  const head = `--- ${before === undefined ? '/dev/null' : `a/${path}`}\n+++ ${after === undefined ? '/dev/null' : `b/${path}`}\n`
  return head + hunks(ops).join('')
}

type Op = { readonly kind: ' ' | '-' | '+'; readonly line: string; readonly ai: number; readonly bi: number }

function splitLines(text: string | undefined): string[] {
  if (text === undefined || text === '') return []
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  else lines[lines.length - 1] += '\n\\ No newline at end of file'
  return lines
}

/** Longest common subsequence by dynamic programming: O(n·m), fine for configuration files. */
function lineOps(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length
  const m = b.length
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const ops: Op[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', line: a[i]!, ai: i++, bi: j++ })
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!))
      ops.push({ kind: '-', line: a[i]!, ai: i++, bi: j })
    else ops.push({ kind: '+', line: b[j]!, ai: i, bi: j++ })
  }
  return ops
}

const CONTEXT_LINES = 3

function hunks(ops: readonly Op[]): string[] {
  const changes = ops.flatMap((o, i) => (o.kind === ' ' ? [] : [i]))
  const out: string[] = []
  let g = 0
  while (g < changes.length) {
    // Changes closer than twice the context share one hunk.
    let h = g
    while (h + 1 < changes.length && changes[h + 1]! - changes[h]! <= 2 * CONTEXT_LINES) h++
    const slice = ops.slice(
      Math.max(0, changes[g]! - CONTEXT_LINES),
      Math.min(ops.length, changes[h]! + CONTEXT_LINES + 1),
    )
    const aLen = slice.filter((o) => o.kind !== '+').length
    const bLen = slice.filter((o) => o.kind !== '-').length
    const aStart = aLen === 0 ? slice[0]!.ai : slice[0]!.ai + 1
    const bStart = bLen === 0 ? slice[0]!.bi : slice[0]!.bi + 1
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@\n`)
    for (const o of slice) out.push(`${o.kind}${o.line}\n`)
    g = h + 1
  }
  return out
}

import { describe, expect, it } from 'vitest'
import { unifiedDiff } from '../../../cli/configure/diff.ts'

describe('unifiedDiff', () => {
  it('shows a change with three lines of context, and far-apart changes as separate hunks', () => {
    const before = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n'
    const after = 'a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n'
    expect(unifiedDiff('x', before, after)).toBe(
      [
        '--- a/x',
        '+++ b/x',
        '@@ -1,5 +1,5 @@',
        ' a',
        '-b',
        '+B',
        ' c',
        ' d',
        ' e',
        '@@ -10,3 +10,4 @@',
        ' j',
        ' k',
        ' l',
        '+m',
        '',
      ].join('\n'),
    )
  })

  it('shows a new file and a removed one against /dev/null', () => {
    expect(unifiedDiff('y', undefined, 'new\n')).toBe('--- /dev/null\n+++ b/y\n@@ -0,0 +1,1 @@\n+new\n')
    expect(unifiedDiff('y', 'old', undefined)).toBe(
      '--- a/y\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-old\n\\ No newline at end of file\n',
    )
  })

  it('is empty of hunks for equal texts', () => {
    expect(unifiedDiff('z', 'same\n', 'same\n')).toBe('--- a/z\n+++ b/z\n')
  })
})

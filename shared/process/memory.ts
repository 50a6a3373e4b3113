import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** V8's `gc()` (the `--expose-gc` extension) with the options this file uses. */
type GcFunction = (options: { readonly type: 'major'; readonly flavor: 'last-resort' }) => void

/**
 * Gives back to the system what start-up left behind. Compiling ~1,700 modules, opening the store and starting
 * libp2p allocate enough that V8 grows its young generation to its largest size (64 MiB of address space on a
 * 2-core machine, ~30 MiB of it resident) and leaves the old generation with pages of start-up garbage; an idle
 * process then holds all of it for good, as V8 only shrinks them in a GC that is told to reduce memory, and an
 * idle process runs none. This runs that GC once: the young generation drops to its initial size and grows again
 * as the load asks (its maximum is left as it is, so serving is not paced by a small one; a cap by
 * `--max-semi-space-size` was measured to cost the warm path CPU). One full, blocking GC of a ~50 MiB heap: tens
 * of milliseconds, once, when the process has just started.
 *
 * V8 offers this GC to scripts only through its `gc` extension; the flag is set just long enough to fetch the
 * function from a fresh context, so no global `gc` appears anywhere else.
 */
export function releaseStartupMemory(): void {
  const exposed = (globalThis as { gc?: unknown }).gc
  let gc: GcFunction
  if (typeof exposed === 'function') {
    gc = exposed as GcFunction
  } else {
    setFlagsFromString('--expose-gc')
    try {
      gc = runInNewContext('gc') as GcFunction
    } finally {
      setFlagsFromString('--no-expose-gc')
    }
  }
  gc({ type: 'major', flavor: 'last-resort' })
}

/** Bytes of V8's young generation held in memory (what `releaseStartupMemory` gives back most of). */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0
}

import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** V8's `gc()` (the `--expose-gc` extension) with the options this file uses. */
type GcFunction = (options: { readonly type: 'major'; readonly flavor: 'last-resort' }) => void

/**
 * How far V8 lets the old generation grow past what a full GC left live before it runs the next one: 100 % (V8
 * picks 10–300 % on its own from how fast it collects against how fast the program promotes). See below.
 */
export const OLD_GENERATION_GROWTH_PERCENT = 100

/**
 * Gives back to the system what start-up left behind. Compiling ~1,700 modules, opening the store and starting
 * libp2p allocate enough that V8 grows its young generation to its largest size (64 MiB of address space on a
 * 2-core machine, ~30 MiB of it resident); an idle process then holds it for good, as V8 shrinks it only in a GC
 * that is told to reduce memory, and an idle process runs none. This runs that GC once: the young generation drops
 * to its initial size and grows again as the load asks. One full, blocking GC of a ~50 MiB heap: tens of
 * milliseconds, once, when the process has just started.
 *
 * Alone, that GC made every transfer after it cost 25–45 % more CPU (measured by bench/datapath, `--trace-gc`):
 * V8 sets the next full GC's trigger at the live old generation times a growing factor plus the young
 * generation's capacity, and both were now small (the factor near its 1.1 minimum on this small, quickly
 * collected heap; the young generation at 1 MiB, and low survival while data flows never grows it back), so a
 * swarm transfer ran a full mark-compact every few MiB promoted: ~25 per 256 MiB instead of a handful. A fixed
 * growing factor of 2 (`--heap-growing-percent`) keeps the trigger where it was: with it, the same transfers run
 * fewer full GCs than a process without this GC at all. Set before the GC, so the limit that GC computes already
 * uses it; it stays for the process's life (an idle process allocates next to nothing, so a looser trigger costs
 * no memory while idle; under load the old generation may reach twice its live size between full GCs).
 *
 * V8 offers this GC to scripts only through its `gc` extension; the flag is set just long enough to fetch the
 * function from a fresh context, so no global `gc` appears anywhere else.
 */
export function releaseStartupMemory(): void {
  setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`)
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

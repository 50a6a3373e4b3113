import { Writable } from 'node:stream'
import { onTestFailed } from 'vitest'

/**
 * The last lines a fleet logged, kept in memory: a test that fails once in many runs (a race on a loaded machine)
 * prints what its nodes were doing instead of only "timed out". Pass `destination` to a fleet with a log level.
 */
export class LogTail {
  readonly #lines: string[] = []
  readonly #max: number
  #pending = ''
  readonly destination: Writable

  constructor(max = 2000) {
    this.#max = max
    this.destination = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        const text = this.#pending + chunk.toString('utf8')
        const parts = text.split('\n')
        this.#pending = parts.pop() ?? ''
        for (const line of parts) this.#push(line)
        done()
      },
    })
  }

  #push(line: string): void {
    if (line === '') return
    this.#lines.push(line)
    if (this.#lines.length > this.#max) this.#lines.splice(0, this.#lines.length - this.#max)
  }

  /** The kept lines, oldest first; each line's `time` made relative to the first one's, for reading. */
  text(): string {
    let t0: number | undefined
    return this.#lines
      .map((line) => {
        const at = /"time":(\d+)/.exec(line)
        if (at === null) return line
        t0 ??= Number(at[1])
        return `+${Number(at[1]) - t0}ms ${line}`
      })
      .join('\n')
  }

  clear(): void {
    this.#lines.length = 0
    this.#pending = ''
  }
}

/**
 * Fleet log options for the running test: its nodes log at debug level into a LogTail printed if the test fails
 * (or times out). With SHOAL_TEST_LOG set, they log to stdout at that level as usual.
 */
export function logOnFailure(max?: number): { logLevel?: string; logDestination?: Writable } {
  if (process.env['SHOAL_TEST_LOG'] !== undefined) return {}
  const tail = new LogTail(max)
  onTestFailed(() => {
    console.log(`the fleet's last ${max ?? 2000} log lines:\n${tail.text()}`)
  })
  return { logLevel: 'debug', logDestination: tail.destination }
}

/**
 * Run inside a namespace (`ip netns exec NS node probe.ts URL [WAIT_MS]`): GETs URL until it answers 2xx
 * and prints the body. The harness lives in the root namespace and cannot reach 169.254 addresses itself.
 */
const [url, waitArg] = process.argv.slice(2)
if (url === undefined) {
  process.stderr.write('usage: probe.ts URL [WAIT_MS]\n')
  process.exit(2)
}
const target: string = url
const deadline = Date.now() + Number(waitArg ?? 0)
async function attempt(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    const body = await res.text()
    if (res.ok) {
      process.stdout.write(body)
      process.exit(0)
    }
    return `status ${res.status}: ${body.slice(0, 200)}`
  } catch (err) {
    return err instanceof Error ? `${err.message} ${String((err as { cause?: unknown }).cause ?? '')}` : String(err)
  }
}

let last = await attempt(target)
for (let delayMs = 20; Date.now() + delayMs <= deadline; delayMs = Math.min(delayMs * 2, 250)) {
  await new Promise((resolve) => setTimeout(resolve, delayMs))
  last = await attempt(target)
}
process.stderr.write(`${url}: ${last}\n`)
process.exit(1)

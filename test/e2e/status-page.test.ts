import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Agent,
  Cleanup,
  fetchBlob,
  freePort,
  type PushedImage,
  pushImage,
  type Registry,
  removeDir,
  startAgent,
  startRegistry,
  tempDir,
} from '../../harness/e2e/index.ts'

/** Debian's chromium (test/e2e/setup.sh installs it); playwright-core drives it, no browser is downloaded. */
const CHROMIUM = process.env['SHOAL_E2E_CHROMIUM'] ?? '/usr/bin/chromium'
const MiB = 1024 * 1024
const LAYER_BYTES = 24 * MiB
// The origin cap makes the pull last ~8 s, so the page has time to show it under way.
const ORIGIN_RATE = '3MiB'
const REPOSITORY = 'private-team/secret-app'

describe('status page in a real headless Chromium', () => {
  const cleanup = new Cleanup()
  let origin: Registry
  let app: PushedImage
  let agent: Agent
  let metricsUrl: string
  let browser: Browser
  let shots: string

  beforeAll(async () => {
    origin = cleanup.add(await startRegistry(), (r) => r.stop())
    app = cleanup.add(await pushImage(origin.url, REPOSITORY, 'v1', { layers: 1, layerBytes: LAYER_BYTES }), (i) =>
      i.cleanup(),
    )
    const port = await freePort()
    metricsUrl = `http://127.0.0.1:${port}`
    agent = cleanup.add(
      await startAgent({
        origin: origin.url,
        extraArgs: ['--metrics-listen', `127.0.0.1:${port}`, '--origin-rate', ORIGIN_RATE],
      }),
      (a) => a.cleanup(),
    )
    shots = cleanup.add(await tempDir('status-page'), (d) => removeDir(d))
    // As root, Chromium's sandbox needs user namespaces this container may not give.
    browser = cleanup.add(await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }), (b) => b.close())
  })
  afterAll(() => cleanup.run())

  it('loads, shows a running pull progressing by chunks, and renders a non-blank page', async () => {
    const layer = app.image.blobs.reduce((a, b) => (b.size > a.size ? b : a))
    const short = layer.digest.replace(/^sha256:/, '').slice(0, 16)
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    await page.goto(`${metricsUrl}/ui`)
    await page.waitForFunction(`document.getElementById('state')?.textContent === 'ready'`)
    expect(await page.title()).toBe('Shoal status')
    expect(await page.textContent('#role')).toBe('agent')

    const pull = fetchBlob(agent.url, REPOSITORY, layer.digest)
    // The layer's chunk completeness as the page shows it ("done/total"), once strictly above `above`.
    const chunksAbove = async (above: number): Promise<[number, number]> => {
      const handle = await page.waitForFunction(
        `(() => {
          const row = [...document.querySelectorAll('#inflight tr')].find((r) => r.textContent.includes(${JSON.stringify(short)}))
          const m = /(\\d+)\\/(\\d+)/.exec(row?.children[2]?.textContent ?? '')
          return m !== null && Number(m[1]) > ${above} && Number(m[1]) < Number(m[2]) ? [Number(m[1]), Number(m[2])] : false
        })()`,
        null,
        { timeout: 20_000, polling: 100 },
      )
      return (await handle.jsonValue()) as [number, number]
    }
    const first = await chunksAbove(0)
    expect(first[1]).toBe(Math.ceil(layer.size / MiB))
    const later = await chunksAbove(first[0])
    expect(later[0]).toBeGreaterThan(first[0])
    expect(await agent.metric('shoal_blobs_in_flight')).toBe(1)
    // Live throughput from the origin while the capped pull runs.
    await page.waitForFunction(`!/^0 B\\/s/.test(document.getElementById('rate-origin').textContent)`, null, {
      timeout: 10_000,
    })
    const png = await page.screenshot({ fullPage: true })
    await writeFile(join(shots, 'pulling.png'), png)

    const done = await pull
    expect(done.digest).toBe(layer.digest)
    await page.waitForFunction(
      `[...document.querySelectorAll('#recent tr')].some((r) => r.textContent.includes(${JSON.stringify(short)}))`,
      null,
      { timeout: 10_000 },
    )
    expect(await page.textContent('#recent')).toContain('ok')
    // Reachable from the node network without credentials: the page never names the repository.
    expect(await page.content()).not.toContain('secret-app')

    // Not blank: decode the screenshot in the browser and measure the spread of its pixels.
    const stats = (await page.evaluate(`(async () => {
      const img = new Image()
      img.src = 'data:image/png;base64,${png.toString('base64')}'
      await img.decode()
      const canvas = document.createElement('canvas')
      canvas.width = img.width
      canvas.height = img.height
      const ctx = canvas.getContext('2d')
      ctx.drawImage(img, 0, 0)
      const { data } = ctx.getImageData(0, 0, img.width, img.height)
      let sum = 0
      let sumSq = 0
      const colours = new Set()
      const n = data.length / 4
      for (let i = 0; i < data.length; i += 4) {
        const luma = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]
        sum += luma
        sumSq += luma * luma
        if (colours.size < 1000) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2])
      }
      const mean = sum / n
      return { width: img.width, height: img.height, variance: sumSq / n - mean * mean, colours: colours.size }
    })()`)) as { width: number; height: number; variance: number; colours: number }
    console.info(`status page screenshot: ${JSON.stringify(stats)}`)
    expect(stats.width).toBe(1280)
    // A blank or single-colour page has variance 0 and one colour; text, bars and the header give many.
    expect(stats.variance).toBeGreaterThan(100)
    expect(stats.colours).toBeGreaterThan(20)
    await page.close()
  })
})

import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadAgentConfig } from '../../agent/config.ts'
import { startAgent } from '../../agent/main.ts'
import { main } from '../../cli/main.ts'
import { loadSeederConfig } from '../../seeder/config.ts'
import { startSeeder } from '../../seeder/main.ts'
import { createLogger } from '../../shared/log/index.ts'
import { loadOrCreateIdentity, parseSwarmKey, readIdentityFile } from '../../shared/p2p/index.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-keygen-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function shoal(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } }
  const code = await main(argv, { io, env: {} })
  return { code, out, err }
}

function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  let logged = ''
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged += chunk.toString()
      done()
    },
  })
  return { log: createLogger({ level: 'info', destination }), text: () => logged }
}

describe('shoal keygen', () => {
  it('swarm-key writes a pnet key, mode 0600, and never overwrites it', async () => {
    const file = join(dir, 'swarm.key')
    const first = await shoal('keygen', 'swarm-key', file)
    expect(first.code).toBe(0)
    const bytes = await readFile(file)
    expect(() => parseSwarmKey(bytes)).not.toThrow()
    expect((await stat(file)).mode & 0o777).toBe(0o600)

    const again = await shoal('keygen', 'swarm-key', file)
    expect(again.code).toBe(1)
    expect(again.err.trim().split('\n')).toHaveLength(1)
    expect(again.err).toContain('not overwritten')
    expect(await readFile(file)).toEqual(bytes)
  })

  it('identity writes a key, prints its peer id, and never overwrites it', async () => {
    const file = join(dir, 'id.key')
    const first = await shoal('keygen', 'identity', file)
    expect(first.code).toBe(0)
    const key = await readIdentityFile(file)
    expect(first.out).toBe(`${peerIdFromPrivateKey(key).toString()}\n`)

    const bytes = await readFile(file)
    const again = await shoal('keygen', 'identity', file)
    expect(again.code).toBe(1)
    expect(again.out).toBe('')
    expect(await readFile(file)).toEqual(bytes)
  })
})

describe('--identity', () => {
  it('wins over the agent data dir’s own key, and the mismatch is logged once', async () => {
    const file = join(dir, 'agent.key')
    const printed = (await shoal('keygen', 'identity', file)).out.trim()
    const data = join(dir, 'data')
    const own = peerIdFromPrivateKey(await loadOrCreateIdentity(data)).toString()
    expect(own).not.toBe(printed)
    const { log, text } = capture()
    const config = loadAgentConfig({
      argv: [
        ...['--listen', '127.0.0.1:0', '--origin', 'http://127.0.0.1:9', '--data', data],
        ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--identity', file],
      ],
      env: {},
      readFile: () => '',
    })
    const agent = await startAgent(config, { log })
    try {
      expect(agent.peerId).toBe(printed)
      const status = (await (await fetch(`${agent.url}/status`)).json()) as { peerId?: string }
      expect(status.peerId).toBe(printed)
    } finally {
      await agent.stop()
    }
    expect(
      text()
        .split('\n')
        .filter((l) => l.includes('differs from the data dir')).length,
    ).toBe(1)
  })

  it('sets the seeder’s peer id, and a missing file stops it instead of minting a key', async () => {
    const file = join(dir, 'seeder.key')
    const printed = (await shoal('keygen', 'identity', file)).out.trim()
    const { log } = capture()
    const args = (identity: string) =>
      loadSeederConfig({
        argv: [
          ...['--origin', 'http://127.0.0.1:9', '--data', join(dir, 'seeder'), '--identity', identity],
          ...['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--api-listen', '127.0.0.1:0'],
        ],
        env: {},
        readFile: () => '',
      })
    const seeder = await startSeeder(args(file), { log })
    try {
      expect(seeder.peerId).toBe(printed)
    } finally {
      await seeder.stop()
    }
    await expect(startSeeder(args(join(dir, 'missing.key')), { log })).rejects.toThrow(/does not exist/)
  })
})

/**
 * The Node floor: the least a Node file server does to send a file, as a reference line for the agent. `node:http`,
 * `fs.createReadStream` with 1 MiB reads, `stream.pipeline`; every GET gets the whole file.
 *
 *   node bench/datapath/floor.ts FILE    (prints `listening PORT` once it listens on 127.0.0.1)
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { pipeline } from 'node:stream/promises'

const READ_BYTES = 1024 * 1024

const file = process.argv[2]
if (file === undefined) throw new Error('usage: floor.ts FILE')
const { size } = await stat(file)

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  pipeline(createReadStream(file, { highWaterMark: READ_BYTES }), res).catch(() => {})
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  process.stdout.write(`listening ${address.port}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))

// Writes this node's topology.kubernetes.io/zone label (or nothing) to the file named by argv[2].
// Runs in the agent's init container with the pod's service account, which may only `get` nodes.
import { readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'

const ZONE_LABEL = 'topology.kubernetes.io/zone'
const SA = process.env.SHOAL_SA_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount'
const out = process.argv[2]
const node = process.env.NODE_NAME
const host = process.env.KUBERNETES_SERVICE_HOST
const port = process.env.KUBERNETES_SERVICE_PORT ?? '443'
if (!out || !node || !host) {
  process.stderr.write('node-zone: need an output file, NODE_NAME and KUBERNETES_SERVICE_HOST\n')
  process.exit(2)
}
const req = request(
  {
    host,
    port: Number(port),
    path: `/api/v1/nodes/${encodeURIComponent(node)}`,
    ca: readFileSync(`${SA}/ca.crt`),
    headers: { authorization: `Bearer ${readFileSync(`${SA}/token`, 'utf8').trim()}`, accept: 'application/json' },
    timeout: 10_000,
  },
  (res) => {
    const parts = []
    res.on('data', (c) => parts.push(c))
    res.on('end', () => {
      if (res.statusCode !== 200) {
        process.stderr.write(`node-zone: GET node ${node}: HTTP ${res.statusCode}\n`)
        process.exit(1)
      }
      const zone = JSON.parse(Buffer.concat(parts).toString('utf8')).metadata?.labels?.[ZONE_LABEL] ?? ''
      writeFileSync(out, zone)
      process.stdout.write(`node-zone: node ${node} is in ${zone === '' ? 'no zone' : `zone ${zone}`}\n`)
    })
  },
)
req.on('timeout', () => req.destroy(new Error('timed out')))
req.on('error', (err) => {
  process.stderr.write(`node-zone: GET node ${node}: ${err.message}\n`)
  process.exit(1)
})
req.end()

/* global document, performance, fetch, setTimeout */
// Polls /status once a second and draws it. Throughput is the change of the byte counters between two polls.
// Every value is written with textContent: nothing from the node is parsed as HTML.
const POLL_MS = 1000
const $ = (id) => document.getElementById(id)
let previous

function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

const short = (d) => (typeof d === 'string' ? d.replace(/^sha256:/, '').slice(0, 16) : '-')

function cell(text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  return td
}

function bar(fraction) {
  const td = document.createElement('td')
  const outer = document.createElement('div')
  outer.className = 'bar'
  const inner = document.createElement('div')
  inner.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`
  outer.append(inner)
  td.append(outer)
  return td
}

function fill(id, rows, columns, empty) {
  const body = $(id)
  body.replaceChildren()
  if (rows.length === 0) {
    const tr = document.createElement('tr')
    const td = cell(empty, 'empty')
    td.colSpan = columns
    tr.append(td)
    body.append(tr)
    return
  }
  for (const cells of rows) {
    const tr = document.createElement('tr')
    tr.append(...cells)
    body.append(tr)
  }
}

function rates(s, now) {
  const bytes = { ...(s.bytes ?? {}), served: Object.values(s.served ?? {}).reduce((a, b) => a + b, 0) }
  if (previous !== undefined) {
    const dt = (now - previous.at) / 1000
    for (const k of ['origin', 'seeder', 'peer', 'served']) {
      const d = (bytes[k] ?? 0) - (previous.bytes[k] ?? 0)
      $(`rate-${k}`).textContent = `${fmtBytes(dt > 0 ? Math.max(0, d) / dt : 0)}/s`
    }
  }
  previous = { at: now, bytes }
}

function draw(s) {
  $('role').textContent = s.role ?? 'node'
  $('peer-id').textContent = s.peerId ?? 'swarm off'
  const state = $('state')
  state.textContent = s.ready === false ? 'starting' : 'ready'
  state.className = s.ready === false ? '' : 'ready'
  if (s.cache) $('cache').textContent = `cache ${fmtBytes(s.cache.bytes)} in ${s.cache.blobs} blobs`
  rates(s, performance.now())
  const downloads = s.downloads ?? []
  fill(
    'inflight',
    downloads.map((d) => {
      const done = d.chunks ? d.chunks.done / Math.max(1, d.chunks.total) : d.size ? d.bytes / d.size : 0
      return [
        cell(short(d.digest), 'mono'),
        cell(fmtBytes(d.size)),
        cell(d.chunks ? `${d.chunks.done}/${d.chunks.total}` : '-'),
        bar(done),
      ]
    }),
    4,
    'nothing in flight',
  )
  const peers = s.peerList ?? []
  $('peer-count').textContent = String(s.peers ?? peers.length)
  fill(
    'peers',
    peers.map((p) => [cell(p.id, 'mono'), cell(p.seeder ? 'seeder' : 'peer'), cell(p.site ?? '-')]),
    3,
    'no peers connected',
  )
  fill(
    'recent',
    (s.recent ?? []).map((r) => [
      cell(short(r.digest), 'mono'),
      cell(fmtBytes(r.size)),
      cell(r.via),
      cell(`${(r.ms / 1000).toFixed(1)} s`),
      cell(r.ok ? 'ok' : 'failed'),
    ]),
    5,
    'no pulls yet',
  )
  if (Array.isArray(s.jobs)) {
    $('jobs-section').hidden = false
    fill(
      'jobs',
      s.jobs.map((j) => [
        cell(j.id, 'mono'),
        cell(j.state),
        cell(String(j.layers)),
        bar(j.size ? j.bytes / j.size : 0),
      ]),
      4,
      'no preheat jobs',
    )
  }
}

async function poll() {
  try {
    const res = await fetch('/status', { cache: 'no-store' })
    if (!res.ok) throw new Error(`/status answered ${res.status}`)
    draw(await res.json())
    $('error').textContent = ''
  } catch (err) {
    $('state').textContent = 'unreachable'
    $('state').className = 'down'
    $('error').textContent = String(err.message ?? err)
  }
  setTimeout(poll, POLL_MS)
}

void poll()

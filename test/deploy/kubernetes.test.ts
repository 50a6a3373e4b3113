import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { AGENT_OPTIONS } from '../../agent/config.ts'
import { type K8sObject, parseManifests, schemaErrors } from './manifests.ts'

const SHOAL_YAML = new URL('../../deploy/kubernetes/shoal.yaml', import.meta.url)

interface Container {
  name: string
  command?: string[]
  args?: string[]
  ports?: { name: string; containerPort: number }[]
  readinessProbe?: { httpGet?: { path: string; port: string | number } }
  livenessProbe?: { httpGet?: { path: string; port: string | number } }
  securityContext?: Record<string, unknown>
  resources?: { requests?: unknown; limits?: unknown }
  volumeMounts?: { name: string; mountPath: string }[]
}
interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  hostNetwork?: boolean
  volumes?: { name: string; secret?: { secretName: string }; hostPath?: { path: string } }[]
  priorityClassName?: string
  tolerations?: unknown[]
}

const objects = parseManifests(await readFile(SHOAL_YAML, 'utf8'))
const find = (kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name)
  if (o === undefined) throw new Error(`${kind}/${name} missing from shoal.yaml`)
  return o
}
const podSpec = (o: K8sObject) => (o['spec'] as { template: { spec: PodSpec } }).template.spec
const argAfter = (c: Container, flag: string) => {
  const args = [...(c.command ?? []), ...(c.args ?? [])]
  const i = args.indexOf(flag)
  return i === -1 ? undefined : args[i + 1]
}

describe('deploy/kubernetes/shoal.yaml', () => {
  it('validates against the Kubernetes OpenAPI schemas, object by object', () => {
    expect(objects.length).toBeGreaterThanOrEqual(9)
    expect(schemaErrors(objects)).toEqual([])
  })

  it('the schema check catches a broken object', () => {
    const ds = structuredClone(find('DaemonSet', 'shoal-agent')) as K8sObject & { spec: { selector?: unknown } }
    delete ds.spec.selector
    const errors = schemaErrors([ds])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/DaemonSet\/shoal-agent: .*selector/)
  })

  it('puts every namespaced object in the shoal Namespace it creates', () => {
    expect(find('Namespace', 'shoal')).toBeDefined()
    for (const o of objects) {
      if (o.kind === 'Namespace' || o.kind === 'PriorityClass') continue
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('shoal')
    }
  })

  it('runs the agent on the host network, configuring containerd first, with the swarm on', () => {
    const spec = podSpec(find('DaemonSet', 'shoal-agent'))
    expect(spec.hostNetwork).toBe(true)
    expect(spec.priorityClassName).toBe(find('PriorityClass', 'shoal-agent').metadata.name)
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }])
    const configure = spec.initContainers?.find((c) => c.name === 'configure-containerd')
    expect(configure?.command?.slice(2, 6)).toEqual(['configure', 'containerd', '--root', '/host'])
    expect(argAfter(configure!, '--mirror')).toBe('http://127.0.0.1:5000')
    expect(configure?.volumeMounts?.map((m) => m.mountPath)).toContain('/host/etc/containerd')
    const agent = spec.containers.find((c) => c.name === 'agent')!
    expect(argAfter(agent, '--listen')).toBe('127.0.0.1:5000')
    expect(argAfter(agent, '--p2p-listen')).toMatch(/^\/ip4\/0\.0\.0\.0\/tcp\/\d+$/)
    expect(argAfter(agent, '--bootstrap')).toBe('dns:shoal-seeder.shoal.svc.cluster.local:4001')
    expect(argAfter(agent, '--swarm-key')).toBe('/etc/shoal/swarm/swarm.key')
  })

  it('passes the agent only flags it has (a typo would crash-loop every node)', () => {
    const known = new Set(Object.values(AGENT_OPTIONS).map((o) => `--${o.flag}`))
    const agent = podSpec(find('DaemonSet', 'shoal-agent')).containers[0]!
    const flags = (agent.args ?? []).filter((a) => a.startsWith('--'))
    expect(flags.length).toBeGreaterThan(5)
    expect(flags.filter((f) => !known.has(f))).toEqual([])
  })

  it('probes the agent on its metrics listener, not on the loopback mirror port', () => {
    const agent = podSpec(find('DaemonSet', 'shoal-agent')).containers[0]!
    const metrics = agent.ports?.find((p) => p.name === 'metrics')
    expect(argAfter(agent, '--metrics-listen')).toBe(`0.0.0.0:${metrics?.containerPort}`)
    expect(agent.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' })
    expect(agent.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' })
  })

  it('gives every container resources and a restrictive securityContext', () => {
    for (const o of objects.filter((x) => x.kind === 'DaemonSet' || x.kind === 'StatefulSet')) {
      const spec = podSpec(o)
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const where = `${o.metadata.name}/${c.name}`
        expect(c.resources?.requests, where).toBeDefined()
        expect(c.resources?.limits, where).toBeDefined()
        expect(c.securityContext?.['allowPrivilegeEscalation'], where).toBe(false)
        expect(c.securityContext?.['readOnlyRootFilesystem'], where).toBe(true)
        expect((c.securityContext?.['capabilities'] as { drop?: string[] })?.drop, where).toEqual(['ALL'])
      }
      // Long-running containers never run as root; only the init steps that write root-owned host files do.
      for (const c of spec.containers) {
        const ctx = {
          ...((o['spec'] as { template: { spec: { securityContext?: object } } }).template.spec.securityContext ?? {}),
          ...c.securityContext,
        }
        expect((ctx as { runAsNonRoot?: boolean }).runAsNonRoot, `${o.metadata.name}/${c.name}`).toBe(true)
      }
    }
  })

  it('keeps each seeder identity in a Secret and its store on a PersistentVolumeClaim, behind a headless Service', () => {
    const sts = find('StatefulSet', 'shoal-seeder')
    const spec = sts['spec'] as { serviceName: string; volumeClaimTemplates: { metadata: { name: string } }[] }
    const svc = find('Service', spec.serviceName)
    expect((svc['spec'] as { clusterIP: string }).clusterIP).toBe('None')
    expect(spec.volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['data'])
    const seeder = podSpec(sts).containers[0]!
    expect(argAfter(seeder, '--identity')).toBe('/etc/shoal/identity/$(POD_NAME).key')
    expect(argAfter(seeder, '--api-token-file')).toBe('/etc/shoal/api/token')
    const secrets = (podSpec(sts).volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []))
    expect(secrets.sort()).toEqual(['shoal-api-token', 'shoal-seeder-identity', 'shoal-swarm-key'])
    expect(find('PodDisruptionBudget', 'shoal-seeder')).toBeDefined()
  })

  it('names the seeders agents trust with a placeholder the agent refuses, until keygen.sh fills it', () => {
    const cm = find('ConfigMap', 'shoal-seeders')
    const value = (cm['data'] as Record<string, string>)['SHOAL_SEEDER']!
    expect(value).toMatch(/^\/dns4\/shoal-seeder-0\.shoal-seeder\.shoal\.svc\.cluster\.local\/tcp\/4001\/p2p\//)
    expect(value).not.toMatch(/\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/)
  })

  it('selects its own pods with every Service', () => {
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const sel = (svc['spec'] as { selector: Record<string, string> }).selector
      const owner = objects.find(
        (o) =>
          (o.kind === 'DaemonSet' || o.kind === 'StatefulSet') &&
          Object.entries(sel).every(
            ([k, v]) =>
              (o['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels[
                k
              ] === v,
          ),
      )
      expect(owner, svc.metadata.name).toBeDefined()
    }
  })
})

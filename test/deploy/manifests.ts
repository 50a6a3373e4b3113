import * as apps from 'kubernetes-models/apps/v1'
import * as networking from 'kubernetes-models/networking.k8s.io/v1'
import * as policy from 'kubernetes-models/policy/v1'
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1'
import * as scheduling from 'kubernetes-models/scheduling.k8s.io/v1'
import * as core from 'kubernetes-models/v1'
import { parseAllDocuments } from 'yaml'

/** The API groups Shoal's manifests use, each with its generated models (one class per kind). */
const MODELS: Readonly<Record<string, Record<string, unknown>>> = {
  v1: core,
  'apps/v1': apps,
  'policy/v1': policy,
  'scheduling.k8s.io/v1': scheduling,
  'rbac.authorization.k8s.io/v1': rbac,
  'networking.k8s.io/v1': networking,
}

/** One rendered Kubernetes object, as kubectl would send it. */
export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> }
  readonly [key: string]: unknown
}

/** Kinds no kubernetes-models schema covers (CRDs); checked by hand in checkCustomResource. */
const CUSTOM_KINDS = new Set(['monitoring.coreos.com/v1/ServiceMonitor'])

/** The objects of a multi-document YAML stream, in order. */
export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`YAML: ${d.errors[0]!.message}`)
      return d.toJS() as K8sObject | null
    })
    .filter((o): o is K8sObject => o !== null)
}

/**
 * Validates every object against the Kubernetes OpenAPI schema of its apiVersion and kind (kubernetes-models'
 * generated JSON-schema validators). Returns one line per invalid object, empty when all pass.
 */
export function schemaErrors(objects: readonly K8sObject[]): string[] {
  const errors: string[] = []
  for (const o of objects) {
    const what = `${o.kind}/${o.metadata?.name}`
    if (CUSTOM_KINDS.has(`${o.apiVersion}/${o.kind}`)) {
      errors.push(...checkCustomResource(o).map((e) => `${what}: ${e}`))
      continue
    }
    const Model = MODELS[o.apiVersion]?.[o.kind] as (new (data: unknown) => { validate(): void }) | undefined
    if (Model === undefined) {
      errors.push(`${what}: no schema for ${o.apiVersion} ${o.kind}`)
      continue
    }
    try {
      new Model(asDecoded(o)).validate()
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`)
    }
  }
  return errors
}

/**
 * kubectl wraps long base64 Secret values in a literal block (line breaks inside); the API server's decoder (Go's
 * encoding/base64) skips line breaks, the schema's "byte" format does not: compare what the server reads.
 */
function asDecoded(o: K8sObject): K8sObject {
  if (o.kind !== 'Secret' || typeof o['data'] !== 'object' || o['data'] === null) return o
  const data = Object.fromEntries(
    Object.entries(o['data'] as Record<string, string>).map(([k, v]) => [k, v.replace(/[\r\n]/g, '')]),
  )
  return { ...o, data }
}

/** The shape a ServiceMonitor needs to scrape anything: a selector and named-port endpoints. */
function checkCustomResource(o: K8sObject): string[] {
  const spec = o['spec'] as
    | { selector?: { matchLabels?: Record<string, string> }; endpoints?: { port?: unknown; path?: unknown }[] }
    | undefined
  const errs: string[] = []
  if (spec?.selector?.matchLabels === undefined) errs.push('spec.selector.matchLabels missing')
  if (!Array.isArray(spec?.endpoints) || spec.endpoints.length === 0) errs.push('spec.endpoints missing')
  for (const e of spec?.endpoints ?? []) {
    if (typeof e.port !== 'string') errs.push('endpoint without a named port')
    if (typeof e.path !== 'string' || !e.path.startsWith('/')) errs.push('endpoint without a path')
  }
  return errs
}

/** Strips the checked-in file's leading comment block, leaving exactly what `kubectl kustomize` prints. */
export function renderedBody(checkedIn: string): string {
  const lines = checkedIn.split('\n')
  let i = 0
  while (i < lines.length && lines[i]!.startsWith('#')) i++
  return lines.slice(i).join('\n')
}

import { join } from 'node:path'
import type { Command, HostPlan } from '../netns.ts'
import { type BenchRegistry, startRegistry } from '../registry.ts'
import { type Scenario, type ScenarioContext, skopeoPull } from '../scenario.ts'

/** Every node pulls straight from the origin. */
export const direct: Scenario = {
  name: 'direct',
  title: 'direct from origin',
  async unavailable() {
    return undefined
  },
  async setup() {},
  pull(node: HostPlan, ctx: ScenarioContext): Command {
    return skopeoPull(ctx.originHost, ctx.image, ctx.pullDest(node))
  },
  async teardown() {},
}

/** What most sites run today: one distribution registry in `proxy:` mode on a site host; nodes pull from it. */
export function pullThroughCache(): Scenario {
  let registry: BenchRegistry | undefined
  return {
    name: 'cache',
    title: 'pull-through cache',
    async unavailable() {
      return undefined
    },
    async setup(ctx) {
      // A fresh storage folder under the scenario's own dir: the cache starts empty every time.
      registry = await startRegistry(ctx.fleet, ctx.fleet.cache, join(ctx.dir, 'cache-registry'), {
        proxyRemoteUrl: ctx.originUrl,
        signal: ctx.signal,
      })
      await ctx.probe(ctx.fleet.nodes[0] ?? ctx.fleet.cache, `${registry.url}/v2/`, 10_000)
    },
    pull(node, ctx) {
      if (registry === undefined) throw new Error('cache scenario: pull before setup')
      return skopeoPull(registry.host, ctx.image, ctx.pullDest(node))
    },
    async teardown() {
      await registry?.stop()
      registry = undefined
    },
  }
}

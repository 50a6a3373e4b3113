// The swarm's errors, with the stable codes the fill policy matches on.

/** The swarm could not take this blob on (no seeder answered): the caller goes to the origin. */
export class SwarmUnavailableError extends Error {
  override name = 'SwarmUnavailableError'
  readonly code: 'SWARM_UNAVAILABLE' | 'SWARM_ELECTED' = 'SWARM_UNAVAILABLE'
}

/** This agent is the one elected to pull the blob from the origin for its peers (peer proofs). */
export class SwarmElectedError extends SwarmUnavailableError {
  override name = 'SwarmElectedError'
  override readonly code = 'SWARM_ELECTED'
}

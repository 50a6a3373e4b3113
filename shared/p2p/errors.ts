/** The identity key file exists but cannot be read as a libp2p private key. Never silently replaced. */
export class InvalidIdentityError extends Error {
  override name = 'InvalidIdentityError'
  readonly code = 'P2P_IDENTITY_INVALID'
}

/** Swarm key contents are not a pnet v1 key file (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits). */
export class InvalidSwarmKeyError extends Error {
  override name = 'InvalidSwarmKeyError'
  readonly code = 'P2P_SWARM_KEY_INVALID'
}

/** A bootstrap entry is neither a multiaddr nor `dns:NAME[:PORT]`. */
export class InvalidBootstrapEntryError extends Error {
  override name = 'InvalidBootstrapEntryError'
  readonly code = 'P2P_BOOTSTRAP_INVALID'
}

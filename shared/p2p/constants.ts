/** The Kademlia protocol id: a private prefix keeps Shoal's DHT apart from the public IPFS one. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'
/** Delay before kad-dht's first self-query, which every other query waits for (kad-dht's default is 1000). */
export const DHT_INITIAL_SELF_QUERY_DELAY_MS = 0

/**
 * How often a node re-provides the blobs it holds (kad-dht's own default is about once a day). Provider records
 * live twice that, so a record a node stopped re-providing (it evicted the blob) is gone from its peers within
 * about 2.25 intervals.
 */
export const DEFAULT_REPROVIDE_INTERVAL_MS = 3_600_000

/** Where the node's identity key lives, relative to the data directory. */
export const IDENTITY_DIR = 'p2p'
export const IDENTITY_FILE = 'identity.key'
/** A protobuf-encoded Ed25519 key is 68 bytes; anything much larger is not an identity file. */
export const IDENTITY_FILE_MAX_BYTES = 16 * 1024

/** Port used for a `dns:NAME` bootstrap entry that names no port (the libp2p convention). */
export const DEFAULT_P2P_PORT = 4001

/** How often the node re-runs bootstrap while it has no connection at all. */
export const BOOTSTRAP_RETRY_INTERVAL_MS = 15_000
/** A bootstrap dial that has not connected by then is given up for this round. */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 5_000
/** Headless services can resolve to many pods; bootstrap dials at most this many at once. */
export const BOOTSTRAP_DIAL_CONCURRENCY = 16

/** go-libp2p / js-libp2p pnet v1 key file header lines. */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
export const SWARM_KEY_ENCODING = '/base16/'
export const SWARM_KEY_BYTES = 32

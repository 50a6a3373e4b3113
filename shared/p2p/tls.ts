import { X509Certificate } from 'node:crypto'
import { connect, createSecureContext, type SecureContext, TLSSocket } from 'node:tls'
import {
  type ComponentLogger,
  type ConnectionEncrypter,
  InvalidCryptoExchangeError,
  type Logger,
  type MessageStream,
  type PeerId,
  type PrivateKey,
  type SecureConnectionOptions,
  type SecuredConnection,
  serviceCapabilities,
  type StreamMuxerFactory,
  UnexpectedPeerError,
  type Upgrader,
} from '@libp2p/interface'
import { generateCertificate, toMessageStream, toNodeDuplex, verifyPeerCertificate } from '@libp2p/tls/utils'
import { LRUCache } from 'lru-cache'

/** The libp2p TLS 1.3 handshake's protocol id (libp2p TLS spec), the one @libp2p/tls, go- and rust-libp2p speak. */
export const TLS_PROTOCOL = '/tls/1.0.0'

/** The ALPN token a peer offers when it cannot negotiate the stream muxer inside the handshake (libp2p TLS spec). */
const NO_EARLY_MUXER_ALPN = 'libp2p'

/**
 * Peer certificates remembered as verified. A node meets each peer on a handful of connections (a dial and a dial
 * back, again after a prune), so this need only cover the peers of a few rollouts; an entry is a certificate's DER
 * (~0.5 KiB as base64) and a peer id.
 */
export const DEFAULT_VERIFIED_CERTIFICATES = 1024

export interface TlsInit {
  /** How many verified peer certificates to remember (default DEFAULT_VERIFIED_CERTIFICATES); 0 remembers none. */
  readonly verifiedCertificates?: number
  /** The clock certificates' validity is checked against (tests). */
  readonly now?: () => number
}

export interface TlsComponents {
  readonly privateKey: PrivateKey
  readonly logger: ComponentLogger
  readonly upgrader: Pick<Upgrader, 'getStreamMuxers'>
}

/** What a certificate proved when it was verified in full, and for how long that holds. */
interface Verified {
  readonly peer: PeerId
  readonly notBefore: number
  readonly notAfter: number
}

/**
 * A peer certificate's DER bytes to the peer id they prove, verified in full once (X.509 parsed in JavaScript, the
 * self-signature and the libp2p key's signature over the certificate key checked) and then looked up. The mapping is
 * a function of the bytes alone (the signed key extension names the one identity key), so a cache keyed by the whole
 * DER cannot make a certificate prove another peer; and the TLS handshake has already proved that the presenter
 * holds the certificate's private key (CertificateVerify), whatever this cache says. A hit is still checked against
 * the certificate's validity period, so an expired certificate is refused from the cache as it is on a miss.
 */
export class VerifiedCertificates {
  private readonly entries: LRUCache<string, Verified> | undefined
  private readonly now: () => number

  constructor(max: number, now: () => number = Date.now) {
    if (!(Number.isInteger(max) && max >= 0)) throw new RangeError(`certificate cache size must be >= 0, got ${max}`)
    this.entries = max === 0 ? undefined : new LRUCache({ max })
    this.now = now
  }

  get size(): number {
    return this.entries?.size ?? 0
  }

  /** The peer `raw` proves; throws as @libp2p/tls does if it proves none, or proves a peer other than `expected`. */
  async peerOf(raw: Uint8Array, expected?: PeerId, log?: Logger): Promise<PeerId> {
    const key = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64')
    let entry = this.entries?.get(key)
    const t = this.now()
    if (entry !== undefined && !(entry.notBefore <= t && t <= entry.notAfter)) {
      this.entries?.delete(key)
      entry = undefined
    }
    if (entry === undefined) {
      // In full, without `expected`: what is remembered is what the certificate proves, not what a dial hoped for.
      const peer = await verifyPeerCertificate(raw, undefined, log)
      const cert = new X509Certificate(raw)
      entry = { peer, notBefore: cert.validFromDate.getTime(), notAfter: cert.validToDate.getTime() }
      // verifyPeerCertificate checked the period against its own clock; this one is what a later hit is held to.
      if (!(entry.notBefore <= t && t <= entry.notAfter)) {
        log?.error('the certificate is outside its validity period')
        throw new InvalidCryptoExchangeError('The certificate is outside its validity period')
      }
      this.entries?.set(key, entry)
    }
    if (expected !== undefined && !expected.equals(entry.peer)) {
      log?.error('certificate proves peer %p, expected %p', entry.peer, expected)
      throw new UnexpectedPeerError()
    }
    return entry.peer
  }
}

/** The node's one TLS key and certificate, as a secure context every connection shares. */
interface Credentials {
  readonly context: SecureContext
  /** When it was made, by the node's clock (its validity starts an hour before: @libp2p/tls's own rule). */
  readonly madeAt: number
}

/**
 * The node's certificate is made again once this old, or at once if the clock has gone back past the moment it was
 * made. A certificate made while the clock ran fast (a node whose clock NTP had not yet set) would otherwise start
 * its validity in the future for every correct peer until real time caught up; @libp2p/tls, which makes one per
 * connection, recovers at the next connection, and so does this within the hour, or at once on the clock's step.
 */
export const CERTIFICATE_RENEW_MS = 60 * 60 * 1000

/**
 * The libp2p TLS 1.3 handshake, byte for byte what `tls()` from @libp2p/tls sends and accepts (same protocol id,
 * certificate format, ALPN muxer negotiation), with the node's certificate made once instead of per connection.
 * @libp2p/tls makes a fresh ECDSA key and X.509 certificate, signed with the node's identity key, for every
 * connection it secures, then builds a new OpenSSL context from their PEM, and parses and verifies the peer's
 * certificate in JavaScript: in a 16-node fleet run that was ~15 % of an agent's CPU (bench/RESULTS.md). The libp2p
 * TLS spec lets an endpoint present the same certificate on many connections; each handshake still has its own
 * ephemeral key exchange, so nothing about a connection's secrecy depends on the certificate key being fresh.
 */
export class ReusedCertificateTls implements ConnectionEncrypter {
  readonly protocol = TLS_PROTOCOL
  readonly [Symbol.toStringTag] = '@shoal/tls'
  readonly [serviceCapabilities] = ['@libp2p/connection-encryption']

  /** The peer certificates this encrypter has verified (its size is what tests and benchmarks can observe). */
  readonly verified: VerifiedCertificates
  private readonly log: Logger
  private readonly components: TlsComponents
  private credentials: Promise<Credentials> | undefined
  /** The credentials once made (to see, without waiting, whether they are due to be made again). */
  private made: Credentials | undefined
  private readonly now: () => number

  constructor(components: TlsComponents, init: TlsInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('shoal:p2p:tls')
    this.verified = new VerifiedCertificates(init.verifiedCertificates ?? DEFAULT_VERIFIED_CERTIFICATES, init.now)
    this.now = init.now ?? Date.now
  }

  async secureInbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, true, options)
  }

  async secureOutbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, false, options)
  }

  /**
   * Made at the first connection, not at start (a node that never connects pays nothing), and shared by every
   * connection after it. Made without any one connection's signal: a handshake timing out must not leave the
   * node without a certificate; a failure is forgotten so the next connection tries again.
   */
  private ownCredentials(): Promise<Credentials> {
    const t = this.now()
    const made = this.made
    if (made !== undefined && (t < made.madeAt || t - made.madeAt >= CERTIFICATE_RENEW_MS)) {
      this.made = undefined
      this.credentials = undefined
    }
    this.credentials ??= generateCertificate(this.components.privateKey).then(
      ({ cert, key }) => {
        this.log('made the TLS certificate of this node')
        const context = createSecureContext({ cert, key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' })
        this.made = { context, madeAt: t }
        return this.made
      },
      (err: unknown) => {
        this.credentials = undefined
        throw err
      },
    )
    return this.credentials
  }

  private async secure(
    connection: MessageStream,
    isServer: boolean,
    options?: SecureConnectionOptions,
  ): Promise<SecuredConnection> {
    const log = connection.log?.newScope('tls') ?? this.log
    const { context } = await this.ownCredentials()
    options?.signal?.throwIfAborted()

    const muxers = this.components.upgrader.getStreamMuxers()
    const earlyMuxer = options?.skipStreamMuxerNegotiation !== true
    let streamMuxer: StreamMuxerFactory | undefined
    const tlsOptions = {
      secureContext: context,
      minVersion: 'TLSv1.3' as const,
      maxVersion: 'TLSv1.3' as const,
      // The peer's certificate is self-signed by design; it is checked against its libp2p key below instead.
      rejectUnauthorized: false,
      // The muxer is agreed in the handshake when both ends can; the last token says "after the handshake".
      ALPNProtocols: [...(earlyMuxer ? muxers.keys() : []), NO_EARLY_MUXER_ALPN],
      ALPNCallback: ({ protocols }: { servername: string; protocols: string[] }): string | undefined => {
        let chosen: string | undefined
        for (const p of protocols) {
          if (p === NO_EARLY_MUXER_ALPN) chosen = p
          const muxer = muxers.get(p)
          if (muxer !== undefined) {
            streamMuxer = muxer
            return p
          }
        }
        return chosen
      },
    }
    const duplex = toNodeDuplex(connection)
    const socket = isServer
      ? new TLSSocket(duplex, { ...tlsOptions, isServer: true, requestCert: true })
      : connect({ ...tlsOptions, socket: duplex })
    duplex.on('error', (err: Error) => socket.emit('error', err))
    const onAbort = (): void => {
      socket.emit('error', options?.signal?.reason ?? new Error('TLS handshake aborted'))
    }
    options?.signal?.addEventListener('abort', onAbort)

    try {
      return await new Promise<SecuredConnection>((resolve, reject) => {
        socket.on('error', (err: Error) => {
          log.error('error securing %s connection - %e', connection.direction, err)
          socket.destroy()
          connection.abort(err)
          reject(err)
        })
        socket.once('secure', () => {
          const raw = socket.getPeerCertificate().raw as Buffer | undefined
          if (raw === undefined) {
            socket.emit('error', new InvalidCryptoExchangeError('The peer sent no certificate'))
            return
          }
          this.verified.peerOf(raw, options?.remotePeer, log).then(
            (remotePeer) => {
              if (!isServer && earlyMuxer) {
                const alpn = socket.alpnProtocol
                if (typeof alpn === 'string' && alpn !== NO_EARLY_MUXER_ALPN) {
                  streamMuxer = muxers.get(alpn)
                  if (streamMuxer === undefined) {
                    const err = new InvalidCryptoExchangeError(`Selected muxer ${alpn} did not exist`)
                    connection.abort(err)
                    reject(err)
                    return
                  }
                }
              }
              log('remote certificate ok, remote peer %p', remotePeer)
              resolve({ remotePeer, connection: toMessageStream(connection, socket), streamMuxer })
            },
            (err: unknown) => socket.emit('error', err),
          )
        })
      })
    } finally {
      options?.signal?.removeEventListener('abort', onAbort)
    }
  }
}

/** The libp2p TLS connection encrypter with one certificate per node; a drop-in for `tls()` from @libp2p/tls. */
export function reusedCertificateTls(init: TlsInit = {}): (components: TlsComponents) => ConnectionEncrypter {
  return (components) => new ReusedCertificateTls(components, init)
}

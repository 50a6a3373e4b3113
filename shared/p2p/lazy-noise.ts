import type { noise } from '@chainsafe/libp2p-noise'
import {
  type ConnectionEncrypter,
  type MessageStream,
  type SecureConnectionOptions,
  type SecuredConnection,
  serviceCapabilities,
} from '@libp2p/interface'

type NoiseComponents = Parameters<ReturnType<typeof noise>>[0]

/** The Noise handshake's protocol id, what `@chainsafe/libp2p-noise` registers. */
export const NOISE_PROTOCOL = '/noise'

/**
 * Noise, second to TLS in Shoal's encrypters (a peer that speaks only Noise still connects), loaded at the first
 * connection that negotiates it. Every Shoal node offers TLS first, so most processes never do: they no longer hold
 * `@chainsafe/libp2p-noise` and its WebAssembly ciphers from start to stop (~280 KiB of source, measured with
 * bench/datapath's idle rows). The handshake itself is Noise's own, unchanged.
 */
export function lazyNoise(): (components: NoiseComponents) => ConnectionEncrypter {
  return (components) => {
    let inner: Promise<ConnectionEncrypter> | undefined
    const load = (): Promise<ConnectionEncrypter> => {
      inner ??= import('@chainsafe/libp2p-noise').then(
        (m) => m.noise()(components),
        (err: unknown) => {
          inner = undefined
          throw err
        },
      )
      return inner
    }
    return {
      protocol: NOISE_PROTOCOL,
      [Symbol.toStringTag]: '@shoal/lazy-noise',
      [serviceCapabilities]: ['@libp2p/connection-encryption', '@chainsafe/libp2p-noise'],
      async secureInbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
        return (await load()).secureInbound(connection, options)
      },
      async secureOutbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
        return (await load()).secureOutbound(connection, options)
      },
    }
  }
}

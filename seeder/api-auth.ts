import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * An onRequest hook that lets through only `Authorization: Bearer <token>`. Anything else gets 401 with a JSON
 * error body and a Bearer challenge. The comparison takes the same time wherever the tokens differ.
 */
export function bearerGuard(token: string) {
  const want = Buffer.from(token)
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    const got = Buffer.from(m?.[1] ?? '')
    if (m !== null && got.length === want.length && timingSafeEqual(got, want)) return
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="shoal-seeder"')
      .send({ error: m === null ? 'this API needs Authorization: Bearer <token>' : 'wrong token' })
  }
}

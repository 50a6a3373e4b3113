/** Resolves on the first SIGTERM or SIGINT; the caller drains and exits 0. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', on)
      process.off('SIGINT', on)
      resolve(sig)
    }
    process.on('SIGTERM', on)
    process.on('SIGINT', on)
  })
}

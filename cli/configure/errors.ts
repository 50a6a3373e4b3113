/** A `configure` input or an existing file it cannot work with: one line for the user, exit code 1. */
export class ConfigureError extends Error {
  override name = 'ConfigureError'
  readonly code = 'CONFIGURE'
}

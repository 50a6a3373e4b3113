/** A flag the harness cannot use; main prints it with the usage and exits 2. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError'
  readonly code = 'BENCH_USAGE'
}

/** A command of the harness (ip, tc, skopeo, docker-registry…) that failed. */
export class BenchCommandError extends Error {
  override readonly name = 'BenchCommandError'
  readonly code = 'BENCH_COMMAND_FAILED'
}

/** A scenario that cannot run on this checkout (e.g. the shoal CLI lacks a command); the report says why. */
export class ScenarioUnavailableError extends Error {
  override readonly name = 'ScenarioUnavailableError'
  readonly code = 'BENCH_SCENARIO_UNAVAILABLE'
}

export declare const MALLOC_TUNABLE: string
export declare function mallocRestartEnv(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
  canExec: boolean,
): NodeJS.ProcessEnv | undefined

/** What `shoal configure` knows before its command runs: kept apart so the CLI loads the writers only when run. */
export type Tool = 'containerd' | 'docker' | 'podman'

export const DEFAULT_MIRROR = 'http://127.0.0.1:5000'

import { spawnSync } from 'node:child_process'

/** Commands the harness runs → the Debian package that provides each. */
export const TOOLS: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  tc: 'iproute2',
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('/bin/sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0
}

/** Why the harness cannot run here, in one line, or undefined when it can. */
export function preflight(uid: number | undefined, has: (cmd: string) => boolean = hasCommand): string | undefined {
  if (uid !== 0) return 'bench: needs root (it creates network namespaces and shapes links with tc); run it as root'
  // It installs nothing itself: a benchmark that changes the machine's packages would surprise its user.
  const missing = Object.keys(TOOLS).filter((c) => !has(c))
  if (missing.length === 0) return undefined
  const pkgs = [...new Set(missing.map((c) => TOOLS[c]!))]
  return (
    `bench: missing ${missing.join(', ')}; install with ` +
    `\`apt-get install -y ${pkgs.join(' ')}\` (or \`bash test/e2e/setup.sh\`)`
  )
}

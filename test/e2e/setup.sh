#!/usr/bin/env bash
# Makes sure the real registry and clients the e2e suite drives are on this machine.
# As root (CI, dev containers) it installs what is missing from Debian's packages;
# as anyone else it says what is missing and fails, since it cannot install.
set -euo pipefail

# command:Debian package that ships it
need=(
  docker-registry:docker-registry
  skopeo:skopeo
  containerd:containerd
  ctr:containerd
  podman:podman
  dockerd:docker.io
  umoci:umoci
  htpasswd:apache2-utils
  openssl:openssl
  tar:tar
  ip:iproute2
  chromium:chromium
)

missing_cmds=()
missing_pkgs=()
for entry in "${need[@]}"; do
  cmd=${entry%%:*}
  pkg=${entry#*:}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    [[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
  fi
done

if ((${#missing_cmds[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "e2e setup: missing ${missing_cmds[*]}; run as root or: apt-get install -y ${missing_pkgs[*]}" >&2
  exit 1
fi

echo "e2e setup: installing ${missing_pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
apt-get update -qq </dev/null
# podman as root with --storage-driver vfs needs no fuse-overlayfs, uidmap or slirp4netns,
# so its Recommends stay out; crun comes in as a hard dependency.
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" </dev/null >/dev/null
echo "e2e setup: installed in $(($(date +%s) - start))s" >&2

for cmd in "${missing_cmds[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "e2e setup: $cmd still missing after install" >&2; exit 1; }
done

#!/bin/sh
# Writes a new swarm's keys for overlays/default (keys/ there, never committed): the swarm key, one identity
# per seeder, the agents' seeder list with each seeder's peer id, and the preheat API token.
# Refuses to run over existing keys (shoal keygen never overwrites a file). SEEDERS=N for N seeders;
# SHOAL="node /opt/shoal/bin/shoal.js" to use an installed copy instead of npx.
set -eu
dir="$(dirname "$0")/overlays/default/keys"
seeders="${SEEDERS:-1}"
shoal="${SHOAL:-npx shoal}"
mkdir -p "$dir"
umask 077
$shoal keygen swarm-key "$dir/swarm.key"
list=""
i=0
while [ "$i" -lt "$seeders" ]; do
  out="$($shoal keygen identity "$dir/shoal-seeder-$i.key")"
  id="$(printf '%s\n' "$out" | grep -oE '(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]+' | head -n 1)"
  if [ -z "$id" ]; then
    echo "keygen.sh: no peer id in the output of shoal keygen identity: $out" >&2
    exit 1
  fi
  list="${list:+$list,}/dns4/shoal-seeder-$i.shoal-seeder.shoal.svc.cluster.local/tcp/4001/p2p/$id"
  i=$((i + 1))
done
printf 'SHOAL_SEEDER=%s\n' "$list" > "$dir/seeders.env"
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$dir/api-token"
echo "keys in $dir; seeders: $list"

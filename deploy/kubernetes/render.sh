#!/bin/sh
# Renders base/ into shoal.yaml (for clusters without Kustomize). The e2e suite checks the two agree.
set -eu
cd "$(dirname "$0")"
{
  echo '# Shoal for clusters without Kustomize: deploy/kubernetes/base rendered by `kubectl kustomize`. Do not edit:'
  echo '# change base/ and run deploy/kubernetes/render.sh (a test keeps the two in sync). Create the Secrets and the'
  echo '# seeder list first (README, "Deploy"); overlays/default does that from the files keygen.sh writes.'
  kubectl kustomize base
} > shoal.yaml.new
mv shoal.yaml.new shoal.yaml

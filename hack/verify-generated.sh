#!/usr/bin/env bash
# Regenerates the CRDs, RBAC and deepcopy code and fails if that changed
# anything: generated files are never edited by hand, and stale ones are a
# defect. On failure the fresh files are left in place for you to commit.
set -euo pipefail
cd "$(dirname "$0")/.."

generated=(config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go charts/identity-operator/crds charts/identity-operator/files/role.yaml docs/api.md)
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
for path in "${generated[@]}"; do
  mkdir -p "$before/$(dirname "$path")"
  [[ -e "$path" ]] && cp -r "$path" "$before/$path"
done

make -s manifests generate >/dev/null

stale=0
for path in "${generated[@]}"; do
  if ! diff -r "$before/$path" "$path" >/dev/null 2>&1; then
    echo "stale generated file(s): $path" >&2
    stale=1
  fi
done
if (( stale )); then
  echo "run 'make manifests generate' and commit the result (done for you in this tree)" >&2
  exit 1
fi
echo "generated files are current"

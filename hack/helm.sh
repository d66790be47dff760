#!/usr/bin/env bash
# Builds helm from the Go module proxy (prebuilt downloads are not reachable
# in CI) into bin/helm-<version>, once, and prints its path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v3.22.0
bin="$root/bin/helm-$version"
if [[ ! -x "$bin" ]]; then
  echo ">> building helm $version (first run only)" >&2
  mkdir -p "$root/bin"
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$version"
  mv "$tmp/helm" "$bin"
  rmdir "$tmp"
fi
echo "$bin"

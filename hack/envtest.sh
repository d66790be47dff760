#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from the Go module
# proxy and caches it under bin/k8s/<version>/. A second run finds the binaries
# and returns at once. Prints the directory to use as KUBEBUILDER_ASSETS.
#
# Prebuilt envtest archives cannot be downloaded in CI, so we build them: about
# 4 minutes on 2 cores the first time.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
module_version() { awk -v m="$1" '$1 == m { print $2; exit }' "$2"; }
apiserver_version=$(module_version k8s.io/kubernetes "$root/hack/tools/kube-apiserver/go.mod")
etcd_version=$(module_version go.etcd.io/etcd/server/v3 "$root/hack/tools/etcd/go.mod")
assets="$root/bin/k8s/${apiserver_version}-etcd-${etcd_version}"

build() { # name, tools module dir, package
  local name=$1 dir=$2 pkg=$3
  if [[ -x "$assets/$name" ]]; then return; fi
  echo ">> building $name from $pkg (first run only; cached in ${assets#"$root"/})" >&2
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$assets/$name.tmp" "$pkg")
  mv "$assets/$name.tmp" "$assets/$name"
}

mkdir -p "$assets"
build kube-apiserver "$root/hack/tools/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build etcd "$root/hack/tools/etcd" go.etcd.io/etcd/server/v3
echo "$assets"

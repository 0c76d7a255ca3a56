#!/usr/bin/env bash
# Build etcd v3.6.4 (the version in Kubernetes 1.34's own module graph) from the Go module proxy.
#
# Why not Debian's etcd 3.4.23: Kubernetes 1.34 serves watches and consistent lists from its
# watch cache and needs etcd's progress notifications to know the cache is current; 3.4.23
# lacks them, and every watch then fails with "Too large resource version". 3.4.31 is the
# documented minimum; the proxy has 3.6.4.
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/etcd/<version>/bin/etcd; skipped when there.
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-v3.6.4}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/etcd/$ETCD_VERSION"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
start=$(date +%s)

if [[ -x "$ROOT/bin/etcd" && -f "$ROOT/bin/.complete" ]]; then
    echo "build-etcd: $ETCD_VERSION already in $ROOT/bin, skipping"
    exit 0
fi

# The server module's go.mod replaces its sibling modules with local paths, so it cannot be
# `go install`ed; a consumer module that requires it resolves the siblings from the proxy.
work="$ROOT/module"
rm -rf "$work" "$ROOT/bin"
mkdir -p "$work" "$ROOT/bin"
cd "$work"
cat >go.mod <<MOD
module sandbench.local/etcd-build

go 1.24.0

godebug default=go1.24
MOD
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
"$GO" get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
"$GO" mod tidy
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$ROOT/bin/etcd" go.etcd.io/etcd/server/v3
"$ROOT/bin/etcd" --version | head -1
echo "$ETCD_VERSION built in $(( $(date +%s) - start ))s" >"$ROOT/bin/.complete"
echo "build-etcd: built $ETCD_VERSION in $(( $(date +%s) - start ))s"

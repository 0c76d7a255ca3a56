#!/usr/bin/env bash
# Build KWOK's `kwok` controller (fake nodes and pods for an existing API server) from the Go
# module proxy (no release downloads are reachable here).
#
# KWOK's go.mod has no replace directives, so `go install pkg@version` builds against the
# module's own go.mod and go.sum: exactly upstream's dependency graph, no consumer module.
# Static (CGO_ENABLED=0) so the binary does not depend on this host's libc.
#
# The kwok binary has no stages of its own (without a config it exits "no stages found"); kwokctl
# embeds upstream's defaults. The same ones, from the same module version, are concatenated into
# <version>/stages.yaml beside bin/: node-initialize (fast), node-heartbeat-with-lease, and the
# fast pod stages (pod-ready, pod-complete, pod-delete), which make a pod on a fake node Running
# and Ready at once and finish its deletion. kwok-up.sh passes them with --config.
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/kwok/<version>/{bin/kwok,stages.yaml};
# skipped when the .complete stamp and both are there. Prints the bin dir last, on stdout;
# progress goes to stderr.
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/kwok/$KWOK_VERSION"
BIN="$ROOT/bin"
STAMP="$BIN/.complete"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
start=$(date +%s)
# shellcheck source=go-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-module.sh"

if [[ -f "$STAMP" && -x "$BIN/kwok" && -f "$ROOT/stages.yaml" ]]; then
    echo "build-kwok: $KWOK_VERSION already in $BIN (stamp present), skipping" >&2
    echo "$BIN"
    exit 0
fi

# The module's go.mod says "go 1.26.0": the go command must not fetch another toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

echo "build-kwok: building $KWOK_VERSION with $("$GO" version) into $BIN" >&2

# Into a scratch dir first, moved in once built, so a half-built binary never looks cached.
# (The module's pkg/consts.Version already says 0.8.0: nothing to stamp with -X.)
rm -rf "$ROOT/bin.tmp"
mkdir -p "$ROOT/bin.tmp"
GOBIN="$ROOT/bin.tmp" "$GO" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
stages=(node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml)
for f in "${stages[@]}"; do
    [[ -f "$src/kustomize/stage/$f" ]] ||
        { echo "build-kwok: no kustomize/stage/$f in sigs.k8s.io/kwok@$KWOK_VERSION ($src)" >&2; exit 1; }
    printf -- '---\n# sigs.k8s.io/kwok@%s kustomize/stage/%s\n' "$KWOK_VERSION" "$f"
    cat "$src/kustomize/stage/$f"
done >"$ROOT/stages.yaml.tmp"
mv -f "$ROOT/stages.yaml.tmp" "$ROOT/stages.yaml"

mkdir -p "$BIN"
mv -f "$ROOT/bin.tmp/kwok" "$BIN/kwok"
rmdir "$ROOT/bin.tmp"
"$BIN/kwok" --version >&2
# Stamp last: only a build that got this far counts as complete.
echo "$KWOK_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$STAMP"
echo "build-kwok: done in $(( $(date +%s) - start ))s" >&2
echo "$BIN"

#!/usr/bin/env bash
# Build gVisor's runsc and its containerd shim (containerd-shim-runsc-v1) from the Go module
# proxy (no release downloads are reachable here).
#
# gVisor publishes no tags on the proxy, only pseudo-versions of its Go-compatible "go" branch;
# the one pinned here is what gvisor.dev/gvisor@latest resolved to when this was written.
#
# Static (CGO_ENABLED=0) on purpose: runsc re-executes /proc/self/exe inside the sandbox's
# chroot, which has no dynamic loader, so a cgo build dies at sandbox start with "error
# executing umounter: fork/exec /proc/self/exe: no such file or directory".
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/gvisor/<version>/bin/{runsc,containerd-shim-runsc-v1};
# skipped when the .complete stamp and both binaries are there. Prints the bin dir last.
set -euo pipefail

GVISOR_VERSION="${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/gvisor/$GVISOR_VERSION"
BIN="$ROOT/bin"
STAMP="$BIN/.complete"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
start=$(date +%s)

if [[ -f "$STAMP" && -x "$BIN/runsc" && -x "$BIN/containerd-shim-runsc-v1" ]]; then
    echo "build-gvisor: $GVISOR_VERSION already in $BIN (stamp present), skipping" >&2
    echo "$BIN"
    exit 0
fi

# The module's go.mod says "go 1.26.3": the go command must not fetch another toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

echo "build-gvisor: building $GVISOR_VERSION with $("$GO" version) into $BIN" >&2

# gVisor's go.mod has no replace directives, so `go install pkg@version` builds against the
# module's own go.mod and go.sum: exactly upstream's dependency graph, no consumer module.
# Both main packages land in a scratch GOBIN and are moved in once both are built.
rm -rf "$ROOT/bin.tmp"
mkdir -p "$ROOT/bin.tmp"
GOBIN="$ROOT/bin.tmp" "$GO" install -trimpath \
    -ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$GVISOR_VERSION" \
    "gvisor.dev/gvisor/runsc@$GVISOR_VERSION" "gvisor.dev/gvisor/shim@$GVISOR_VERSION"

mkdir -p "$BIN"
mv -f "$ROOT/bin.tmp/runsc" "$BIN/runsc"
# containerd finds a shim by runtime_type: io.containerd.runsc.v1 -> containerd-shim-runsc-v1.
mv -f "$ROOT/bin.tmp/shim" "$BIN/containerd-shim-runsc-v1"
rmdir "$ROOT/bin.tmp"
"$BIN/runsc" --version | head -1 >&2
# Stamp last: only a build that got this far counts as complete.
echo "$GVISOR_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$STAMP"
echo "build-gvisor: done in $(( $(date +%s) - start ))s" >&2
echo "$BIN"

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
# The shim gets one patch (its oom_score_adj, see below); runsc is built as published.
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/gvisor/<version>/bin/{runsc,containerd-shim-runsc-v1};
# skipped when the .complete stamp (of this recipe) and both binaries are there. Prints the bin
# dir last, on stdout; progress goes to stderr.
set -euo pipefail

GVISOR_VERSION="${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/gvisor/$GVISOR_VERSION"
BIN="$ROOT/bin"
STAMP="$BIN/.complete"
# Bump when the way the binaries are built changes, so cached ones from an older recipe are rebuilt.
RECIPE="recipe 2: shim ignores a failed oom_score_adj"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
start=$(date +%s)
# shellcheck source=go-module.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-module.sh"

if grep -qsF -- "$RECIPE" "$STAMP" && [[ -x "$BIN/runsc" && -x "$BIN/containerd-shim-runsc-v1" ]]; then
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
# Both binaries go to a scratch dir first and are moved in once both are built.
rm -rf "$ROOT/bin.tmp"
mkdir -p "$ROOT/bin.tmp"
ldflags="-s -w -X gvisor.dev/gvisor/runsc/version.version=$GVISOR_VERSION"
GOBIN="$ROOT/bin.tmp" "$GO" install -trimpath -ldflags "$ldflags" "gvisor.dev/gvisor/runsc@$GVISOR_VERSION"

# The shim, with one change. Its start sets its own oom_score_adj to -999 and gives up if it
# cannot; lowering it needs CAP_SYS_RESOURCE, which even root lacks on this machine (the reason
# up.sh sets containerd's restrict_oom_score_adj). Patched, a failure is ignored; where the write
# works nothing changes. Ignored silently: containerd 1.6 parses everything `shim start` prints
# (stdout and stderr) as the shim's address, so a warning there breaks every sandbox. runsc
# itself is built unpatched (above). The go command refuses -overlay for files in the module
# cache, so the shim is built from a copy of the module (same go.mod and go.sum), one line changed.
src=$(module_dir "gvisor.dev/gvisor@$GVISOR_VERSION")
[[ -f "$src/go.mod" ]] || { echo "build-gvisor: no module source for gvisor.dev/gvisor@$GVISOR_VERSION" >&2; exit 1; }
rm -rf "$ROOT/src"
cp -R "$src" "$ROOT/src"
chmod -R u+w "$ROOT/src"
manager="$ROOT/src/pkg/shim/v1/manager.go"
fatal='return shim.BootstrapParams{}, fmt.Errorf("failed to set OOM Score on shim: %w", err)'
ignore='_ = err // sandbench: no CAP_SYS_RESOURCE, keep the inherited oom_score_adj'
[[ $(grep -cF -- "$fatal" "$manager") -eq 1 ]] ||
    { echo "build-gvisor: $manager no longer has the line to patch; check the patch" >&2; exit 1; }
awk -v fatal="$fatal" -v ignore="$ignore" '{ i = index($0, fatal); if (i) $0 = substr($0, 1, i - 1) ignore; print }' \
    "$manager" >"$manager.new"
mv -f "$manager.new" "$manager"
(cd "$ROOT/src" && "$GO" build -trimpath -ldflags "$ldflags" -o "$ROOT/bin.tmp/shim" ./shim)
rm -rf "$ROOT/src"

mkdir -p "$BIN"
mv -f "$ROOT/bin.tmp/runsc" "$BIN/runsc"
# containerd finds a shim by runtime_type: io.containerd.runsc.v1 -> containerd-shim-runsc-v1.
mv -f "$ROOT/bin.tmp/shim" "$BIN/containerd-shim-runsc-v1"
rmdir "$ROOT/bin.tmp"
"$BIN/runsc" --version >&2
# Stamp last: only a build that got this far counts as complete.
echo "$GVISOR_VERSION ($RECIPE) built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$STAMP"
echo "build-gvisor: done in $(( $(date +%s) - start ))s" >&2
echo "$BIN"

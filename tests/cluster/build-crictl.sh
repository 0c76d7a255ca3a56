#!/usr/bin/env bash
# Build crictl (cri-tools v1.34.0, the release that goes with Kubernetes 1.34) from the Go module
# proxy. The image-pull phase asks the node's CRI through it: `crictl inspecti` is the CRI
# ImageStatus call that verifies an image is present or absent before each sample, and `crictl
# rmi` is RemoveImage, which makes a pull cold. Debian 12 packages no crictl.
#
# Static (CGO_ENABLED=0) and -trimpath, so the one binary can be copied to another node as is.
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/crictl/<version>/bin/crictl; skipped when
# the .complete stamp and the binary are there. Prints the binary's path last, on stdout;
# progress goes to stderr.
set -euo pipefail

CRICTL_VERSION="${CRICTL_VERSION:-v1.34.0}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/crictl/$CRICTL_VERSION"
BIN="$ROOT/bin"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
start=$(date +%s)

if [[ -x "$BIN/crictl" && -f "$BIN/.complete" ]]; then
    echo "build-crictl: $CRICTL_VERSION already in $BIN, skipping" >&2
    echo "$BIN/crictl"
    exit 0
fi

# cri-tools' go.mod has no replace directives, so `go install pkg@version` builds against the
# module's own go.mod and go.sum: upstream's dependency graph, no consumer module. The go.mod
# says go 1.24.1; the go command must not fetch another toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
echo "build-crictl: building $CRICTL_VERSION with $("$GO" version) into $BIN" >&2
rm -rf "$ROOT/bin.tmp" "$BIN"
mkdir -p "$ROOT/bin.tmp"
# Without the version ldflag `crictl --version` says "unknown".
GOBIN="$ROOT/bin.tmp" "$GO" install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
mv "$ROOT/bin.tmp" "$BIN"
"$BIN/crictl" --version >&2
# Stamp last: only a build that got this far counts as complete.
echo "$CRICTL_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$BIN/.complete"
echo "build-crictl: built $CRICTL_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$BIN/crictl"

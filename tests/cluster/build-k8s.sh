#!/usr/bin/env bash
# Build the Kubernetes control-plane/node binaries sandbench's cluster tests need,
# straight from the Go module proxy (no release tarballs or registries are reachable here).
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/k8s/<version>/bin/{kube-apiserver,...}
# etcd is built by build-etcd.sh.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/k8s/$K8S_VERSION"
BIN="$ROOT/bin"
STAMP="$BIN/.complete"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

start=$(date +%s)

have_all() {
    [[ -f "$STAMP" ]] || return 1
    local b
    for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if have_all; then
    echo "build-k8s: $K8S_VERSION binaries already in $BIN (stamp present), skipping ($(( $(date +%s) - start ))s)"
    exit 0
fi

# A go.mod "go 1.24.0" line must not make the go command fetch another toolchain.
export GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# v1.X.Y of k8s.io/kubernetes pairs with v0.X.Y of every staging module.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"

echo "build-k8s: building $K8S_VERSION with $("$GO" version) into $BIN"

# The tag's go.mod replaces its staging modules with ./staging/src paths that do not exist
# in a module download, so derive the list from it rather than hard-coding ~30 names that
# change between releases.
modjson=$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION")
gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson")
info=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson")
[[ -f "$gomod" ]] || { echo "build-k8s: no go.mod for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
mapfile -t staging < <(awk '
    /^replace[[:space:]]*\(/ { inblock = 1; next }
    inblock && /^\)/         { inblock = 0; next }
    inblock && $2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }
    /^replace[[:space:]]+k8s\.io\// && $3 == "=>" && $4 ~ /^\.\/staging\// { print $2 }
' "$gomod")
(( ${#staging[@]} > 0 )) || { echo "build-k8s: found no staging replaces in $gomod" >&2; exit 1; }
echo "build-k8s: ${#staging[@]} staging modules pinned to $STAGING_VERSION"

# Reproducible build date: the tag's own commit time as recorded by the proxy.
build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)
[[ -n "$build_date" ]] || build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Fresh consumer module each time: a half-finished one from an interrupted run is not trusted.
SRC="$ROOT/src"
rm -rf "$SRC" "$ROOT/bin.tmp"
mkdir -p "$SRC" "$ROOT/bin.tmp"
{
    echo "module sandbench.local/k8s-build"
    echo
    # Upstream's runtime defaults (GODEBUG) rather than Go 1.26's.
    echo "go 1.24.0"
    echo
    echo "godebug default=go1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
    echo ")"
} >"$SRC/go.mod"

pkgs=()
for b in "${BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done

cd "$SRC"
# main packages cannot be blank-imported; "tool" directives are the supported way to
# depend on them (Go 1.24+).
"$GO" get -tool "${pkgs[@]/%/@$K8S_VERSION}"
"$GO" mod tidy

IFS=. read -r major minor _ <<<"${K8S_VERSION#v}"
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION"
    ldflags+=" -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    # The proxy does not tell us the tag's commit hash; say where it came from instead.
    ldflags+=" -X $p.gitCommit=module-proxy-$K8S_VERSION"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
done

"$GO" build -trimpath -ldflags "$ldflags" -o "$ROOT/bin.tmp/" "${pkgs[@]}"

mkdir -p "$BIN"
for b in "${BINARIES[@]}"; do mv -f "$ROOT/bin.tmp/$b" "$BIN/$b"; done
rmdir "$ROOT/bin.tmp"
"$BIN/kubectl" version --client
# Stamp last: only a build that got this far counts as complete.
echo "$K8S_VERSION built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$STAMP"
echo "build-k8s: done in $(( $(date +%s) - start ))s"

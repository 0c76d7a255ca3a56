#!/usr/bin/env bash
# Build KubeVirt's component binaries from the Go module proxy (no release downloads or
# registries are reachable here), for a real KubeVirt deployment in software emulation.
#
# Why v1.7.0 and not v1.9.0 (the schema sandbench validates against): v1.9.0 needs
# kubevirt.io/virt-template-api v0.2.0 and v1.8.0's virt-launcher needs libguestfs.org/libnbd at
# a pseudo-version, and the proxy refuses both. v1.7.0 needs neither (see KUBEVIRT-NOTES.md).
#
# The module zip leaves out the nested modules under staging/ (kubevirt.io/api and
# kubevirt.io/client-go), which go.mod replaces with ./staging/src paths; a copy of the module
# is built with those two replaced by the published modules of the same version, GOWORK=off
# (the zip carries a go.work naming the missing staging dirs) and -mod=mod (no vendor/).
#
# cgo: virt-launcher calls libvirt through libvirt.org/go/libvirt, built with its
# libvirt_dlopen tag: it carries libvirt's headers and loads libvirt.so.0 at run time, so the
# libvirt in the virt-launcher image (trixie's 11.3) decides which API calls work. Linked the
# usual way (pkg-config) against this host's libvirt-dev, every call newer than bookworm's 9.0
# would be compiled to a "not supported" stub whatever the image has; that way also builds
# (recipe 1, see KUBEVIRT-NOTES.md) and is what upstream does with its matching libvirt-devel.
# The binaries upstream marks static (virt-operator, virt-api, virt-controller) and virtctl are
# built with CGO_ENABLED=0; the node-side ones with cgo, as upstream's Bazel does.
# container-disk is C (cmd/container-disk-v2alpha/main.c), linked -static as upstream does: it
# runs in a container that has nothing else.
#
# Output: ${SANDBENCH_CACHE:-$HOME/.cache/sandbench}/kubevirt/<version>/bin/; skipped when the
# .complete stamp (of this recipe) and every binary are there. The binaries are built into a
# scratch directory that is renamed into place whole, so bin/ is either complete or absent.
# Prints the bin dir last, on stdout; progress goes to stderr.
set -euo pipefail

KUBEVIRT_VERSION="${KUBEVIRT_VERSION:-v1.7.0}"
CACHE="${SANDBENCH_CACHE:-$HOME/.cache/sandbench}"
ROOT="$CACHE/kubevirt/$KUBEVIRT_VERSION"
BIN="$ROOT/bin"
STAMP="$BIN/.complete"
# Bump when the way the binaries are built changes, so cached ones from an older recipe are rebuilt.
RECIPE="recipe 2: libvirt_dlopen, manifest-templator"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
# Upstream's default build tags (hack/common.sh).
TAGS="selinux"

# Pure Go, as upstream builds them (static = "on" in their BUILD.bazel), virtctl, and
# manifest-templator (tools/), which renders the release's kubevirt-operator.yaml.in for deploying.
STATIC=(virt-operator virt-api virt-controller virtctl manifest-templator)
# The node side: virt-launcher needs cgo (libvirt); the rest are built the same way upstream's
# Bazel does (no static = "on"), and run in the same Debian-based images.
CGO=(virt-handler virt-launcher virt-launcher-monitor virt-tail virt-probe virt-chroot virt-freezer)
BINARIES=("${STATIC[@]}" "${CGO[@]}" container-disk)

start=$(date +%s)
log() { echo "build-kubevirt: $*" >&2; }

have_all() {
    grep -qsF -- "$RECIPE" "$STAMP" || return 1
    local b
    for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

# One build at a time per version: a second one waits, then finds the stamp and skips.
mkdir -p "$ROOT"
exec 9>"$ROOT/.build.lock"
flock 9

if have_all; then
    log "$KUBEVIRT_VERSION already in $BIN (stamp present), skipping"
    echo "$BIN"
    exit 0
fi

# The module's go.mod says "go 1.24.0": the go command must not fetch another toolchain.
export GOTOOLCHAIN=local GOWORK=off
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"

log "building $KUBEVIRT_VERSION with $("$GO" version) into $BIN"

modjson=$("$GO" mod download -json "kubevirt.io/kubevirt@$KUBEVIRT_VERSION")
src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson")
info=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",\{0,1\}$/\1/p' <<<"$modjson")
[[ -f "$src/go.mod" ]] || { log "no module source for kubevirt.io/kubevirt@$KUBEVIRT_VERSION"; exit 1; }

# Scratch space next to the cache entry (same filesystem, so the final rename is atomic); a
# leftover of an interrupted run is not trusted.
rm -rf "$ROOT"/src "$ROOT"/bin.tmp.* "$ROOT"/bin.old.*
work=$(mktemp -d "$ROOT/bin.tmp.XXXXXX")
trap 'rm -rf "$work" "$ROOT/src"' EXIT
cp -R "$src" "$ROOT/src"
chmod -R u+w "$ROOT/src"
cd "$ROOT/src"
rm -f go.work go.work.sum
for m in kubevirt.io/api kubevirt.io/client-go; do
    grep -qE "^[[:space:]]*$m => \./staging/" go.mod ||
        { log "go.mod no longer replaces $m with ./staging; check the recipe"; exit 1; }
    "$GO" mod edit -replace "$m=$m@$KUBEVIRT_VERSION"
done

# Reproducible build date: the tag's commit time as recorded by the proxy.
build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)
[[ -n "$build_date" ]] || build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
v=kubevirt.io/client-go/version
# The proxy does not tell us the tag's commit hash; say where it came from instead.
ldflags="-s -w -X $v.gitVersion=$KUBEVIRT_VERSION -X $v.gitCommit=module-proxy-$KUBEVIRT_VERSION"
ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=$build_date"

pkgs() { local b; for b in "$@"; do if [[ -d "tools/$b" ]]; then echo "./tools/$b"; else echo "./cmd/$b"; fi; done; }
log "pure Go: ${STATIC[*]}"
CGO_ENABLED=0 "$GO" build -trimpath -tags "$TAGS" -ldflags "$ldflags" -o "$work/" $(pkgs "${STATIC[@]}")
log "cgo: ${CGO[*]}"
CGO_ENABLED=1 "$GO" build -trimpath -tags "$TAGS,libvirt_dlopen" -ldflags "$ldflags" -o "$work/" $(pkgs "${CGO[@]}")
log "C: container-disk"
"${CC:-gcc}" -O2 -static -o "$work/container-disk" cmd/container-disk-v2alpha/main.c

cd "$ROOT"
"$work/virtctl" version --client >&2
# libvirt_dlopen: not linked against libvirt, but loading libvirt.so.0 by name.
! ldd "$work/virt-launcher" | grep -q 'libvirt' && grep -qa 'libvirt\.so\.0' "$work/virt-launcher" ||
    { log "virt-launcher does not look like a libvirt_dlopen build"; exit 1; }
# Stamp inside the scratch dir, then one rename: bin/ never exists half-built.
echo "$KUBEVIRT_VERSION ($RECIPE) built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$work/.complete"
chmod 755 "$work"
if [[ -e "$BIN" ]]; then
    old=$(mktemp -d "$ROOT/bin.old.XXXXXX")
    mv "$BIN" "$old/"
    mv "$work" "$BIN"
    rm -rf "$old"
else
    mv "$work" "$BIN"
fi
log "done in $(( $(date +%s) - start ))s"
echo "$BIN"

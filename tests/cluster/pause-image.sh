#!/usr/bin/env bash
# Build a tiny OCI image archive from Debian's busybox-static, for use as the CRI sandbox
# ("pause") image and as a general-purpose test image. No registry is reachable, so the
# archive is assembled by hand and imported with `ctr images import`.
#
# usage: pause-image.sh OUTPUT.tar [IMAGE_NAME]
# The image runs `sleep` forever (the sandbox only has to stay alive; containerd stops it with
# SIGKILL) and contains /bin/busybox plus sh/sleep/true/ip/... applet links.
set -euo pipefail

out="${1:?usage: pause-image.sh OUTPUT.tar [IMAGE_NAME]}"
name="${2:-localhost/sandbench/pause:1}"
busybox="${BUSYBOX:-/bin/busybox}"

# busybox must be static: the image has no libc.
if [[ ! -x "$busybox" ]] || ldd "$busybox" >/dev/null 2>&1; then
    echo "pause-image: $busybox missing or dynamically linked; install busybox-static" >&2
    exit 1
fi

case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/tmp" "$work/rootfs/proc" "$work/rootfs/sys" \
         "$work/rootfs/dev" "$work/rootfs/etc" "$work/blobs/sha256"
cp "$busybox" "$work/rootfs/bin/busybox"
for applet in sh sleep true false ip cat ls echo grep env id hostname ps; do
    ln -s busybox "$work/rootfs/bin/$applet"
done

# Fixed mtimes/owners so the layer digest (and thus the image ID) is stable across builds.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$work/rootfs" -cf "$work/layer.tar" .

blob() { # file -> prints "digest size" and moves it into blobs/
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$work/blobs/sha256/$d"
    echo "$d $s"
}

read -r layer_digest layer_size < <(blob "$work/layer.tar")

# Uncompressed layer, so diff_id == layer digest.
cat >"$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/bin/busybox","sleep","2147483647"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"sandbench pause-image.sh (busybox-static)"}]}
JSON
read -r config_digest config_size < <(blob "$work/config.json")

cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$layer_size}]}
JSON
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

# containerd names the imported image after io.containerd.image.name.
cat >"$work/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"${name##*:}"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$work" -cf "$out.tmp" oci-layout index.json blobs
mv -f "$out.tmp" "$out"
echo "pause-image: wrote $out ($name, $arch, $(stat -c %s "$out") bytes)"

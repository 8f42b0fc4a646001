#!/bin/bash
# mkimage.sh OUT.tar [TAG] — an OCI image-layout tarball holding one busybox
# layer (a static /bin/busybox, every applet a symlink beside it, /etc/passwd
# and /etc/group with root), written by hand so no registry is needed:
#   oci-layout, index.json (one manifest, org.opencontainers.image.ref.name
#   = TAG, default "latest"), blobs/sha256/{layer tar, config, manifest}.
# `ctr image import --base-name local/bb OUT.tar` then names it local/bb:TAG.
# The config sets PATH and Cmd ["/bin/sh"], like a real busybox image.
set -euo pipefail
out=$(realpath -m "$1")
tag=${2:-latest}
work=$(mktemp -d /tmp/moonshim-img.XXXXXX)
trap 'rm -rf "$work"' EXIT

case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac

# ---------------------------------------------------------------- the layer
root=$work/rootfs
mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
# a reproducible tar: fixed owner and times, sorted names
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
	-C "$root" -cf "$work/layer.tar" .

# blob FILE: moves FILE into blobs/sha256/<digest>; prints "<digest> <size>".
blob() {
	local d s
	d=$(sha256sum "$1" | awk '{print $1}')
	s=$(stat -c %s "$1")
	mv "$1" "$blobs/$d"
	echo "sha256:$d $s"
}

read -r layer_digest layer_size < <(blob "$work/layer.tar")

# ---------------------------------------------------------------- config, manifest, index
# (an uncompressed layer: its diff_id is its digest)
jq -n --arg arch "$arch" --arg diff "$layer_digest" '{
	architecture: $arch, os: "linux",
	config: {
		Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
		Cmd: ["/bin/sh"], WorkingDir: "/"
	},
	rootfs: {type: "layers", diff_ids: [$diff]},
	history: [{created_by: "tests/containerd/mkimage.sh"}]
}' >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")

jq -n --arg cd "$config_digest" --argjson cs "$config_size" \
	--arg ld "$layer_digest" --argjson ls "$layer_size" '{
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
	layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

jq -n --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg arch "$arch" --arg tag "$tag" '{
	schemaVersion: 2,
	manifests: [{
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		digest: $md, size: $ms,
		platform: {architecture: $arch, os: "linux"},
		annotations: {"org.opencontainers.image.ref.name": $tag}
	}]
}' >"$work/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"

tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 \
	-C "$work/layout" -cf "$out" oci-layout index.json blobs

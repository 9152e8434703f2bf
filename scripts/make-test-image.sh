#!/bin/sh
#  make-test-image.sh - builds a busybox-based test image from Debian's
#  busybox-static, for zube's tests and examples (docs/runtime-oci.md).
#
#  usage: make-test-image.sh [-f oci|oci-archive|docker-archive] [-n NAME] OUT
#    oci             OUT is a directory: an OCI image layout (the default)
#    oci-archive     OUT is a tar of that layout
#    docker-archive  OUT is a tar in `docker save` format
#    -n NAME         the image's name (default zube.test/busybox:1)
#    -b BUSYBOX      the static busybox to copy (default /bin/busybox)
#
#  One layer: /bin/busybox and its applets as symlinks, /etc/passwd and
#  /etc/group (root, nobody), /www/index.html for `httpd -f -h /www`, and
#  /tmp. The tar is reproducible (sorted, owner 0, mtime 0), so the same
#  busybox always gives the same digests. Only tar, gzip and sha256sum.
set -eu

format=oci
name=zube.test/busybox:1
busybox=/bin/busybox
while getopts f:n:b: opt; do
    case $opt in
    f) format=$OPTARG ;;
    n) name=$OPTARG ;;
    b) busybox=$OPTARG ;;
    *) echo "usage: $0 [-f oci|oci-archive|docker-archive] [-n NAME] OUT" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: $0 [-f oci|oci-archive|docker-archive] [-n NAME] OUT" >&2; exit 2; }
out=$1
case $format in oci|oci-archive|docker-archive) ;; *)
    echo "$0: unknown format '$format' (oci, oci-archive, docker-archive)" >&2; exit 2 ;;
esac
[ -x "$busybox" ] || { echo "$0: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
case $(uname -m) in
x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '<html><body><h1>zube test image</h1></body></html>\n' >"$root/www/index.html"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$root" -cf "$work/layer.tar" .
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c <"$1" | tr -d ' '; }
diff_id=$(sha "$work/layer.tar")
config='{"architecture":"'$arch'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff_id'"]},"history":[{"created_by":"make-test-image.sh"}]}'
printf '%s' "$config" >"$work/config.json"
config_hex=$(sha "$work/config.json")

if [ "$format" = docker-archive ]; then
    d=$work/docker
    mkdir -p "$d/$diff_id"
    cp "$work/layer.tar" "$d/$diff_id/layer.tar"
    cp "$work/config.json" "$d/$config_hex.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
        "$config_hex" "$name" "$diff_id" >"$d/manifest.json"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$d" -cf "$out" .
    exit 0
fi

l=$work/oci
mkdir -p "$l/blobs/sha256"
gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
layer_hex=$(sha "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$l/blobs/sha256/$layer_hex"
layer_size=$(size "$l/blobs/sha256/$layer_hex")
mv "$work/config.json" "$l/blobs/sha256/$config_hex"
config_size=$(size "$l/blobs/sha256/$config_hex")
manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$config_hex'","size":'$config_size'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'$layer_hex'","size":'$layer_size'}]}'
printf '%s' "$manifest" >"$work/manifest.json"
manifest_hex=$(sha "$work/manifest.json")
manifest_size=$(size "$work/manifest.json")
mv "$work/manifest.json" "$l/blobs/sha256/$manifest_hex"
printf '{"imageLayoutVersion":"1.0.0"}' >"$l/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"},"platform":{"architecture":"%s","os":"linux"}}]}' \
    "$manifest_hex" "$manifest_size" "$name" "$arch" >"$l/index.json"

if [ "$format" = oci-archive ]; then
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$l" -cf "$out" .
else
    rm -rf "$out"
    mkdir -p "$out"
    cp -R "$l/." "$out/"
fi

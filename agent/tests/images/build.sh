#!/bin/sh
# Builds corral-test-busybox:latest, a tiny image holding a static busybox, without any
# image registry: these machines reach none. Idempotent: does nothing when the image exists.
set -eu

image="${CORRAL_TEST_IMAGE:-corral-test-busybox:latest}"

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
    if [ -x "$candidate" ] && "$candidate" --list 2>/dev/null | grep -qx httpd; then
        busybox="$candidate"
        break
    fi
done

if [ -z "$busybox" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # The package list may be empty on a fresh machine.
    apt-get install -y --no-install-recommends busybox-static >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends busybox-static >/dev/null; }
    busybox=/bin/busybox
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/www" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh sleep nc httpd echo cat ls env true false kill trap test printf head tail dd wget id; do
    ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$rootfs/etc/passwd"
echo 'corral test page' > "$rootfs/www/index.html"

tar -C "$rootfs" -cf - . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$image" >/dev/null

#!/bin/sh
# Builds corral-test-busybox:latest, a tiny image holding a static busybox, without any
# image registry: these machines reach none. Idempotent: does nothing when the image exists.
# The busybox comes from Debian's busybox-static package; when it is not installed, the
# package is downloaded and unpacked in a temporary folder, leaving the system untouched.
set -eu

image="${CORRAL_TEST_IMAGE:-corral-test-busybox:latest}"

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

busybox=""
if dpkg -s busybox-static >/dev/null 2>&1; then
    busybox=$(dpkg -L busybox-static | grep '/bin/busybox$' | head -n 1)
fi
if [ -z "$busybox" ]; then
    (
        cd "$work"
        # The package lists may be empty on a fresh machine.
        apt-get download busybox-static >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get download busybox-static >/dev/null; }
        dpkg-deb -x busybox-static_*.deb unpacked
    )
    busybox="$work/unpacked/bin/busybox"
fi
if [ ! -x "$busybox" ]; then
    echo "no static busybox found (looked for Debian's busybox-static)" >&2
    exit 1
fi

rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/www" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh sleep nc httpd echo cat ls env true false kill test printf head tail tr dd wget id; do
    ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$rootfs/etc/passwd"
echo 'corral test page' > "$rootfs/www/index.html"

tar -C "$rootfs" -cf - . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$image" >/dev/null

# A busybox that is not static would not run in an empty root file system: fail here,
# with a clear message, rather than in every test.
if ! docker run --rm --network none "$image" /bin/busybox true; then
    docker rmi "$image" >/dev/null 2>&1 || true
    echo "the image $image does not run; is $busybox statically linked?" >&2
    exit 1
fi

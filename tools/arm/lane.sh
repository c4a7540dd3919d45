#!/bin/sh
# The arm64 lane (`make test-arm64`; ARCH armhf works the same way): this checkout's tests in a
# Debian bookworm root for that architecture, run through qemu-user, with Debian's own python3
# and apt's python3-cryptography, as on Raspberry Pi OS bookworm. Correctness only: emulated
# timings mean nothing.
#
#   sh tools/arm/lane.sh arm64       (after `make bundle`: the bundle test runs dist/nmosauth-lite.pyz)
#
# The root (tools/arm/root.sh, cached as build/ARCH-root.tar) is never changed: each run unpacks
# it into a throwaway directory, mounts /proc, /dev and /tmp there in a private mount namespace,
# copies the checkout to /src and runs Debian's pytest on DEVICE_TESTS. Everything mounted or
# written goes away when the run ends.
set -eu
arch=${1:-arm64}
top=$(cd "$(dirname "$0")/../.." && pwd)
root="$top/build/$arch-root"
# the Wycheproof and IS-10 vectors on both backends, the closing helper on this interpreter's TLS
# transport, and what a Pi user runs (tests/device); DEVICE_TESTS=... picks others
DEVICE_TESTS=${DEVICE_TESTS:-"tests/test_crypto_backends.py tests/test_validator.py tests/test_claims.py \
tests/test_permissions.py tests/test_jwk.py tests/aio/test_closing.py tests/device"}

[ "$(id -u)" = 0 ] || { echo "$arch lane: needs root (debootstrap, binfmt_misc, mounts, chroot)" >&2; exit 1; }
[ -f "$top/dist/nmosauth-lite.pyz" ] || { echo "$arch lane: no dist/nmosauth-lite.pyz (make bundle)" >&2; exit 1; }
t0=$(date +%s)
sh "$top/tools/arm/root.sh" "$arch" "$root"
echo "$arch lane: root ready after $(( $(date +%s) - t0 )) s (cached in build/$arch-root.tar); running the tests emulated"

run=$(mktemp -d "${TMPDIR:-/var/tmp}/nmosauth-lite-$arch-lane.XXXXXX")
trap 'rm -rf "$run"' EXIT  # the mounts below live and die with their namespace
mkdir "$run/root"
tar xf "$root.tar" -C "$run/root"
# The checkout as git sees it (tracked and new files, not ignored ones), plus the bundle.
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        tar cf - --null --ignore-failed-read -T -) > "$run/src.tar"
else
    (cd "$top" && tar cf - --exclude=./build --exclude=./.venv --exclude=./.venv-pure --exclude=./dist .) > "$run/src.tar"
fi
(cd "$top" && tar rf "$run/src.tar" dist/nmosauth-lite.pyz)

# shellcheck disable=SC2016
unshare --mount --propagation private sh -eu -c '
    run=$1 arch=$2 tests=$3
    m=$run/root
    mount -t proc proc "$m/proc"
    mount --rbind /dev "$m/dev"
    mount -t tmpfs tmpfs "$m/tmp"
    mkdir -p "$m/src"
    tar xf "$run/src.tar" -C "$m/src"
    exec chroot "$m" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 NMOSAUTH_DEVICE_LANE="$arch" \
        sh -c "cd /src && python3 -m pytest -p no:cacheprovider $tests"
' lane "$run" "$arch" "$DEVICE_TESTS"

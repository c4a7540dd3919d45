#!/bin/sh
# Build (once) a Debian bookworm root for another CPU architecture, the way a Raspberry Pi OS
# bookworm image looks to Python: Debian's python3 3.11 with apt's python3-cryptography.
#
#   sh tools/arm/root.sh arm64 build/arm64-root      # -> build/arm64-root.tar (or armhf)
#
# Needs root, debootstrap and qemu-user-static (installed with apt-get when missing) and the
# kernel's binfmt_misc (mounted here when it is not, and qemu registered for the architecture).
# The Debian mirror is the one this machine's apt already uses (read from /etc/apt/sources*),
# never one written here. The root is cached as one tarball, OUT.tar, with OUT.ready naming the
# packages it was built with; a tarball whose list matches is reused (delete it to rebuild). It is
# built outside the checkout and kept as a tarball because a root is no tree to keep in one:
# debootstrap mounts /proc in it while it works, and its absolute symlinks point into the host,
# so any tool that walks the checkout following links (setuptools' file finder does) would walk
# the whole machine.
set -eu
arch=${1:?usage: root.sh ARCH OUT}
out=${2:?usage: root.sh ARCH OUT}
suite=bookworm
# python3-cffi-backend must be listed beside python3-cryptography, or debootstrap cannot
# configure it; python3-venv for board/install.sh --wheel; python3-ecdsa for the pure
# backend's ES256/ES384; Debian's pytest for the tests run there; passwd for useradd (install.sh
# without systemd); openssl to make the TLS files of the install test.
pkgs=python3,python3-cryptography,python3-cffi-backend,python3-ecdsa,python3-venv,python3-pytest,python3-pytest-timeout,passwd,openssl,ca-certificates
ready="$out.ready"

case "$arch" in
    arm64) qemu=aarch64 ;;
    armhf) qemu=arm ;;
    *) echo "armroot: unknown architecture $arch (arm64 or armhf)" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "armroot: needs root (debootstrap, binfmt_misc)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# one builder at a time: `make test` starts this in the background and the lane waits here
exec 9>"$out.lock"
flock 9

need=""
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need="$need debootstrap"
[ -x "/usr/bin/qemu-$qemu-static" ] || need="$need qemu-user-static"
if [ -n "$need" ]; then
    echo "armroot: apt-get install$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# binfmt_misc: the kernel runs foreign ELF files through qemu (flag F: the interpreter is opened
# now, so it works inside the chroot without a copy of qemu there).
bfm=/proc/sys/fs/binfmt_misc
[ -e "$bfm/register" ] || mount -t binfmt_misc binfmt_misc "$bfm"
if [ ! -e "$bfm/qemu-$qemu" ]; then
    conf=/usr/lib/binfmt.d/qemu-$qemu.conf
    [ -f "$conf" ] || { echo "armroot: no $conf (qemu-user-static)" >&2; exit 1; }
    cat "$conf" > "$bfm/register"
fi
if [ -f "$out.tar" ] && [ -f "$ready" ] && [ "$(cat "$ready")" = "$suite $arch $pkgs" ]; then
    exit 0  # built before with the same packages
fi

mirror=$(sh "$(dirname "$0")/mirror.sh" "$suite")
[ -n "$mirror" ] || { echo "armroot: no apt source for $suite in /etc/apt/sources*" >&2; exit 1; }

rm -f "$out.tar" "$ready"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/nmosauth-lite-$arch-root.XXXXXX")
cleanup() {  # debootstrap may leave /proc (and more) mounted in the root when it fails
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP  # a stopped build cleans up too
dir=$work/root
t0=$(date +%s)
echo "armroot: debootstrap $suite $arch (a few minutes)" >&2
if ! debootstrap --arch="$arch" --variant=minbase --include="$pkgs" "$suite" "$dir" "$mirror" >"$out-debootstrap.log" 2>&1; then
    tail -20 "$out-debootstrap.log" >&2
    echo "armroot: debootstrap failed (whole log: $out-debootstrap.log)" >&2
    exit 1
fi
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$dir/etc/hosts"
rm -rf "$dir/var/cache/apt/archives/"*.deb
tar cf "$out.tar.new" --numeric-owner -C "$dir" .
mv -f "$out.tar.new" "$out.tar"
echo "$suite $arch $pkgs" > "$ready"
echo "armroot: $arch root ready in $(( $(date +%s) - t0 )) s ($out.tar, $(du -m "$out.tar" | cut -f1) MiB)" >&2

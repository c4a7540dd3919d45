#!/bin/sh
# Install the Debian packages the test suite needs, when missing (root only; prints what it does).
#   tools/sysdeps.sh          everything `make test` needs
#   tools/sysdeps.sh venv     only what `python3 -m venv` needs (the set-up step runs it first):
#                             Debian and Raspberry Pi OS ship python3 without ensurepip, so venv
#                             creation fails until python3-venv is installed
#   tools/sysdeps.sh debian   only what the Debian lane needs (make test-py)
#   tools/sysdeps.sh bench    everything, and the HTTP load generator the benchmarks prefer
set -e
need=""
mode=${1:-all}
if [ "$mode" = "venv" ]; then
    "${PY:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 || need=" python3-venv"
else
    # the Debian lane: Debian's own python3 with apt's cryptography and ecdsa, as on a Pi
    deb=${DEB_PY:-/usr/bin/python3}
    "$deb" -c 'import ensurepip, venv' >/dev/null 2>&1 || need="$need python3-venv"
    "$deb" -c 'import cryptography' >/dev/null 2>&1 || need="$need python3-cryptography python3-cffi-backend"
    "$deb" -c 'import ecdsa' >/dev/null 2>&1 || need="$need python3-ecdsa"
fi
if [ "$mode" = "all" ] || [ "$mode" = "bench" ]; then
    command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need="$need dnsmasq-base"
    command -v curl >/dev/null 2>&1 || need="$need curl"
    command -v openssl >/dev/null 2>&1 || need="$need openssl"
    command -v node >/dev/null 2>&1 || need="$need nodejs npm"
    # systemd-analyze verify, systemd-sysusers and systemd-tmpfiles check board/ (tests/test_board.py)
    command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
    # the arm64 lane: a Debian root for arm64, run through qemu-user (tools/arm/root.sh)
    command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need="$need debootstrap"
    [ -x /usr/bin/qemu-aarch64-static ] || need="$need qemu-user-static"
fi
if [ "$mode" = "bench" ]; then
    command -v wrk >/dev/null 2>&1 || need="$need wrk"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "sysdeps: please install:$need" >&2
    exit 1
fi
echo "sysdeps: apt-get install$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null

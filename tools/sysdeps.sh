#!/bin/sh
# Install the Debian packages the test suite needs, when missing (root only; prints what it does).
set -e
need=""
# `tools/sysdeps.sh venv`: only what `python3 -m venv` needs (the set-up step runs it first).
# Debian and Raspberry Pi OS ship python3 without ensurepip: venv creation fails until
# python3-venv is installed.
if [ "${1:-}" = "venv" ]; then
    "${PY:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 || need=" python3-venv"
else
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need="$need dnsmasq-base"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v node >/dev/null 2>&1 || need="$need nodejs npm"
# systemd-analyze verify, systemd-sysusers and systemd-tmpfiles check board/ (tests/test_board.py)
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# `tools/sysdeps.sh bench`: also the HTTP load generator the benchmarks prefer
if [ "${1:-}" = "bench" ]; then
    command -v wrk >/dev/null 2>&1 || need="$need wrk"
fi
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "sysdeps: please install:$need" >&2
    exit 1
fi
echo "sysdeps: apt-get install$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $need >/dev/null

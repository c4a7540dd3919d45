#!/bin/sh
# Print the path of a CPython X.Y interpreter on this machine, or say where none was found.
#
#   sh tools/pythons.sh 3.13       # -> /root/.pyenv/versions/3.13.0/bin/python3.13
#
# Looks, in this order, for `pythonX.Y` on PATH (a pyenv shim counts only if it really runs),
# the newest pyenv version X.Y.* ($PYENV_ROOT, default ~/.pyenv), then /usr/bin and
# /usr/local/bin. Debian bookworm packages only 3.11; the machine image carries pyenv builds of
# 3.12 and 3.13. Exit 1 (with the places looked at) when there is none.
set -eu
v=${1:?usage: pythons.sh X.Y}
works() { [ -x "$1" ] && "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; }

if p=$(command -v "python$v" 2>/dev/null) && works "$p"; then
    # a pyenv shim: report the interpreter behind it, so a venv does not depend on the shim
    real=$("$p" -c 'import sys; print(sys.executable)')
    echo "$real"
    exit 0
fi
root=${PYENV_ROOT:-$HOME/.pyenv}
for d in $(ls -d "$root/versions/$v".* 2>/dev/null | sort -V -r); do
    if works "$d/bin/python$v"; then
        echo "$d/bin/python$v"
        exit 0
    fi
done
for p in "/usr/bin/python$v" "/usr/local/bin/python$v"; do
    if works "$p"; then
        echo "$p"
        exit 0
    fi
done
echo "pythons: no CPython $v here (looked at python$v on PATH, $root/versions/$v.*, /usr/bin, /usr/local/bin)" >&2
exit 1

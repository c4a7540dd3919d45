#!/bin/sh
# The MicroPython lane (`make test-mpy`): the core's checks on MicroPython 1.27 under Node.
# Installs the pinned npm package (package.json / package-lock.json here) into
# tools/mpy/node_modules when it is missing, then runs runner.mjs; extra arguments
# (e.g. -v) go to the runner. The last line printed is `mpy: N passed, M failed`.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PKG_JSON="$HERE/node_modules/@micropython/micropython-webassembly-pyscript/package.json"
VERSION=1.27.0

if ! command -v node >/dev/null 2>&1; then
    echo "mpy: node is not installed (see 'make sysdeps')" >&2
    exit 2
fi
if [ ! -f "$PKG_JSON" ] || ! grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
    echo "mpy: installing @micropython/micropython-webassembly-pyscript $VERSION into tools/mpy/node_modules" >&2
    (cd "$HERE" && npm install --no-audit --no-fund)
fi
# A runaway check must not hang CI: the lane takes a few seconds.
if command -v timeout >/dev/null 2>&1; then
    exec timeout 300 node "$HERE/runner.mjs" "$@"
fi
exec node "$HERE/runner.mjs" "$@"

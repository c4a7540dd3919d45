#!/bin/sh
# Install the third-party authorization servers of the interop tests (tests/interop): the exact
# versions pinned in package.json / package-lock.json here, into tools/interop/node_modules, by
# `npm ci` when missing or of another version. The tests' session set-up runs this; so may CI.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "interop: node/npm are not installed (see 'make sysdeps')" >&2
    exit 2
fi
VERSION=$(sed -n 's/.*"oidc-provider": "\([0-9.]*\)".*/\1/p' "$HERE/package.json")
PKG_JSON="$HERE/node_modules/oidc-provider/package.json"
if [ ! -f "$PKG_JSON" ] || ! grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
    echo "interop: installing oidc-provider $VERSION into tools/interop/node_modules" >&2
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

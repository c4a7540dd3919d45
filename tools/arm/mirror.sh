#!/bin/sh
# Print the Debian mirror this machine's apt already uses for SUITE: the URI of the first source
# (one-line `deb URI SUITE ...` or deb822 `URIs:` / `Suites:`) that serves it. Nothing is written
# into the repository: the mirror is read at run time.
#
#   sh tools/arm/mirror.sh bookworm [FILE...]     (default: /etc/apt/sources.list and sources.list.d/)
set -eu
suite=${1:?usage: mirror.sh SUITE [FILE...]}
shift
[ $# -gt 0 ] || set -- /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
for f in "$@"; do [ -f "$f" ] && cat "$f" && echo; done | awk -v s="$suite" '
    /^[ \t]*#/ { next }
    /^deb[ \t]/ { n = 2; if ($2 ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
                  if ($(n + 1) == s) { print $n; exit } next }
    /^Types:/ { deb = 0; for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1; next }
    /^URIs:/ { uri = $2; next }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s && uri != "" && deb) { print uri; exit } next }
    /^[ \t]*$/ { uri = ""; deb = 0 }'

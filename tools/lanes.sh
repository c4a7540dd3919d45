#!/bin/sh
# `make test`'s lane runner: runs every lane even when one fails, each as `MAKE test-LANE`, in
# streams that run side by side (the lanes of one stream one after another), and ends with one
# summary line per lane in the order given, then "make test: every lane passed" or FAILED.
#
#   sh tools/lanes.sh LOGDIR "MAKE COMMAND" "py pure mpy arm64" "py313 py312"
#
# A lane's output goes to LOGDIR/LANE.log and is printed whole when the lane ends (two streams
# never interleave their lines); "make test: lane LANE starting (N of M)" is printed as it starts.
set -u
logdir=$1
make_cmd=$2
shift 2
mkdir -p "$logdir"
all=$(echo "$@")
total=$(echo "$all" | wc -w)

position() {
    i=0
    for l in $all; do
        i=$((i + 1))
        [ "$l" = "$1" ] && echo "$i" && return
    done
}

run_stream() {
    for lane in "$@"; do
        rm -f "$logdir/$lane.result"
        echo "make test: lane $lane starting ($(position "$lane") of $total)"
        t0=$(date +%s)
        if $make_cmd "test-$lane" > "$logdir/$lane.log" 2>&1; then r=passed; else r=FAILED; fi
        t=$(( $(date +%s) - t0 ))
        # one lane's output at a time on the terminal
        flock "$logdir/.print" sh -c 'echo "----- lane $1: $2 after $3 s -----"; cat "$4"' \
            print "$lane" "$r" "$t" "$logdir/$lane.log"
        echo "$r $t" > "$logdir/$lane.result"
    done
}

for stream in "$@"; do
    # shellcheck disable=SC2086
    run_stream $stream &
done
wait

failed=0
for lane in $all; do
    if [ -f "$logdir/$lane.result" ]; then read -r r t < "$logdir/$lane.result"; else r=FAILED t=0; fi
    [ "$r" = passed ] || failed=1
    printf 'make test: lane %-6s %s (%s s)\n' "$lane" "$r" "$t"
done
if [ "$failed" = 0 ]; then
    echo "make test: every lane passed"
else
    echo "make test: FAILED" >&2
    exit 1
fi

#!/usr/bin/env bash
# Repeatability of `slcbench speed` on the CPU: three runs of the same sweep on a quiet machine, then
# three with one core kept busy by another process; each run's wall time beside its results.
#
#   bash tools/speed_repeatability.sh OUT [SPEED OPTIONS...]   (default: --arch alexnet --classes 1,2^16)
set -euo pipefail
out=${1:?usage: speed_repeatability.sh OUT [SPEED OPTIONS...]}
shift
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--arch alexnet --classes 1,2^16)
sweep() {  # $1: folder
    mkdir -p "$1"
    /usr/bin/time -f "%e s wall, %M KB peak" -a -o "$1/walltimes.txt" \
        env PYTHONPATH=. python -m slcbench speed --device cpu "${options[@]}" -o "$1" >>"$1/log.txt" 2>&1
}
for i in 1 2 3; do sweep "$out/quiet"; done
python3 -c "while True: pass" &  # one core busy for the length of the busy runs
busy=$!
trap 'kill $busy 2>/dev/null' EXIT
for i in 1 2 3; do sweep "$out/busy"; done

#!/usr/bin/env bash
# After: `slcbench evaluate` of this commit on the same inputs, warm page cache, whole processes under
# /usr/bin/time -v; each file's per-block wall times are in the JSON it writes (wall_seconds).
#   flock -x /work/locks/cpu.lock results/cpu-2core/evaluate-scale/record_after.sh results/cpu-2core/evaluate-scale/after
set -u
out=$1
mkdir -p "$out"
for f in /tmp/slc17/big/logits.npy /tmp/slc17/big.npz /tmp/slc17/tall/logits.npy; do cat $f > /dev/null; done
{
  echo "# fincore (page cache residency of the inputs)"
  fincore /tmp/slc17/big/logits.npy /tmp/slc17/big.npz /tmp/slc17/tall/logits.npy
  run() {  # NAME ARGS...: one whole process, its JSON in $out/NAME.json
    name=$1; shift
    echo; echo "# $name: /usr/bin/time -v python -m slcbench evaluate $* --json $out/$name.json --force"
    /usr/bin/time -v python -m slcbench evaluate "$@" --json "$out/$name.json" --force 2>&1
  }
  for i in 1 2 3; do run big-npy-all-$i /tmp/slc17/big; done
  for i in 1 2 3; do run big-npy-slc-$i /tmp/slc17/big --blocks slc; done
  for i in 1 2 3; do run big-npz-all-$i /tmp/slc17/big.npz; done
  run tall-npy-all-1 /tmp/slc17/tall
} > "$out/after.txt" 2>&1

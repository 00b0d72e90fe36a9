#!/usr/bin/env bash
# Before, whole processes repeated: two more runs of each input at commit b0c93ae (tree exported to /tmp/slc17/before).
set -u
out=$1
cd /tmp/slc17/before
export PYTHONPATH=/tmp/slc17/before
for f in /tmp/slc17/big/logits.npy /tmp/slc17/big.npz /tmp/slc17/tall/logits.npy; do cat $f > /dev/null; done
{
for i in 2 3; do
  for f in /tmp/slc17/big /tmp/slc17/big.npz /tmp/slc17/tall; do
    echo; echo "# run $i, whole process: /usr/bin/time -v python -m slcbench evaluate $f"
    /usr/bin/time -v python -m slcbench evaluate $f 2>&1
  done
done
} > $out 2>&1

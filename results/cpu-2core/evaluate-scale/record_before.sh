#!/usr/bin/env bash
# Before: evaluate at commit b0c93ae (the tree exported to /tmp/slc17/before), warm page cache.
set -u
out=$1
cd /tmp/slc17/before
export PYTHONPATH=/tmp/slc17/before
for f in /tmp/slc17/big/logits.npy /tmp/slc17/big.npz /tmp/slc17/tall/logits.npy; do cat $f > /dev/null; done
{
echo "# fincore (page cache residency of the inputs)"; fincore /tmp/slc17/big/logits.npy /tmp/slc17/big.npz /tmp/slc17/tall/logits.npy
echo; echo "# per block, one process: python time_blocks_before.py /tmp/slc17/big"
python /work/wt17/results/cpu-2core/evaluate-scale/time_blocks_before.py /tmp/slc17/big
echo; echo "# per block, one process: python time_blocks_before.py /tmp/slc17/tall"
python /work/wt17/results/cpu-2core/evaluate-scale/time_blocks_before.py /tmp/slc17/tall
for f in /tmp/slc17/big /tmp/slc17/big.npz /tmp/slc17/tall; do
  echo; echo "# whole process: /usr/bin/time -v python -m slcbench evaluate $f"
  /usr/bin/time -v python -m slcbench evaluate $f 2>&1
done
} > $out 2>&1

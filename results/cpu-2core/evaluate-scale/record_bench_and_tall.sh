#!/usr/bin/env bash
# The 50,000 x 1,000 pytest-benchmark suite before (commit b0c93ae, tree exported to /tmp/slc17/before)
# and after (this tree), and two more after runs of the 1,000,000 x 1,000 file; exclusive CPU lock:
#   flock -x /work/locks/cpu.lock results/cpu-2core/evaluate-scale/record_bench_and_tall.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/../../.." && pwd)
{
  echo "# before: python -m pytest tests/benchmarks/test_bench_evaluate.py --benchmark-only (tree of b0c93ae)"
  (cd /tmp/slc17/before && PYTHONPATH=/tmp/slc17/before python -m pytest -q -p no:cacheprovider \
      tests/benchmarks/test_bench_evaluate.py --benchmark-only --benchmark-json "$here/bench-evaluate-before.json")
  echo "# after: the same, this tree"
  (cd "$tree" && PYTHONPATH="$tree" python -m pytest -q -p no:cacheprovider \
      tests/benchmarks/test_bench_evaluate.py --benchmark-only --benchmark-json "$here/bench-evaluate-after.json")
  echo "# after, peak memory: python -m pytest -s tests/benchmarks/test_bench_evaluate.py -k peak"
  (cd "$tree" && PYTHONPATH="$tree" python -m pytest -q -s -p no:cacheprovider tests/benchmarks/test_bench_evaluate.py -k peak)
} > "$here/bench.txt" 2>&1
cat /tmp/slc17/tall/logits.npy > /dev/null
{
  for i in 2 3; do
    echo; echo "# tall-npy-all-$i: /usr/bin/time -v python -m slcbench evaluate /tmp/slc17/tall --json $here/after/tall-npy-all-$i.json --force"
    (cd "$tree" && PYTHONPATH="$tree" /usr/bin/time -v python -m slcbench evaluate /tmp/slc17/tall \
        --json "$here/after/tall-npy-all-$i.json" --force 2>&1)
  done
} > "$here/after/tall-repeats.txt" 2>&1

#!/usr/bin/env bash
# The benchmark suite in interleaved rounds on two checkouts (the baseline, then the candidate, then
# the baseline again, ...), so that the machine's changes of speed between runs hit both alike:
#
#   bash tools/benchmark_rounds.sh BASE_CHECKOUT NEW_CHECKOUT OUT [ROUNDS] [PYTEST OPTIONS...]
#
# writes OUT/base/round-N.json and OUT/new/round-N.json (pytest-benchmark JSON), which
# `slcbench compare OUT/base OUT/new` judges round by round. ROUNDS defaults to 6, the fewest that
# give each of 16 benchmarks a 95% family-wise interval; the default options time the suite's fast
# benchmarks (the head and the losses).
set -euo pipefail
base=$(cd "${1:?usage: benchmark_rounds.sh BASE_CHECKOUT NEW_CHECKOUT OUT [ROUNDS] [PYTEST OPTIONS...]}" && pwd)
new=$(cd "${2:?}" && pwd)
out=${3:?}
rounds=${4:-6}
shift $(( $# < 4 ? $# : 4 ))
options=("$@")
if [ ${#options[@]} -eq 0 ]; then
    options=(tests/benchmarks -m "not slow" --benchmark-only --benchmark-min-rounds=10 --benchmark-max-time=0.2
             --benchmark-warmup=on --benchmark-warmup-iterations=1)
fi
mkdir -p "$out/base" "$out/new"
out=$(cd "$out" && pwd)
for i in $(seq 1 "$rounds"); do
    for side in base new; do
        checkout=$base
        [ "$side" = new ] && checkout=$new
        (cd "$checkout" && PYTHONPATH=. python -m pytest -q -p no:cacheprovider "${options[@]}" \
            --benchmark-json "$out/$side/round-$i.json") >>"$out/$side/log.txt" 2>&1
    done
done

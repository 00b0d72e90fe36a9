#!/usr/bin/env bash
# The README's CI recipe applied to this checkout's own benchmark suite: RUNS runs of the same code,
# each compared with the one before (A/A), then one run of a build slowed by PATCH compared with the
# last unchanged run. Every JSON, Markdown and log file lands in OUT.
#
#   bash tools/gate_check.sh OUT [RUNS] [PATCH]
#
# The benchmark settings and the compare command are the README's ("CI regression benchmarks").
set -euo pipefail
out=${1:?usage: gate_check.sh OUT [RUNS] [PATCH]}
runs=${2:-4}
patch=${3:-tools/slowdown-query-head.patch}
mkdir -p "$out"
bench_options=(--benchmark-only --benchmark-min-rounds=10 --benchmark-max-time=0.5
               --benchmark-warmup=on --benchmark-warmup-iterations=1)
bench() {  # $1: checkout, $2: JSON to write
    (cd "$1" && PYTHONPATH=. python -m pytest -q -p no:cacheprovider tests/benchmarks "${bench_options[@]}" \
        --benchmark-json "$2") >"$2.log" 2>&1
}
gate() {  # $1: baseline JSON, $2: new JSON, $3: name of the outputs
    set +e
    PYTHONPATH=. python -m slcbench compare "$1" "$2" --max-regression 25% \
        --json "$out/$3.json" --markdown "$out/$3.md" >"$out/$3.txt" 2>&1
    echo "$3: exit $?" | tee -a "$out/verdicts.txt"
    set -e
}
here=$(pwd)
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    bench "$here" "$out/bench-$i.json"
    echo "bench-$i: $(( $(date +%s) - start )) s" | tee -a "$out/walltimes.txt"
    if [ "$i" -gt 1 ]; then gate "$out/bench-$((i - 1)).json" "$out/bench-$i.json" "aa-$((i - 1))-$i"; fi
done
slow=$(mktemp -d)
git worktree add -q --detach "$slow" HEAD
(cd "$slow" && git apply "$here/$patch")
bench "$slow" "$out/bench-slowed.json"
git worktree remove --force "$slow"
gate "$out/bench-$runs.json" "$out/bench-slowed.json" "slowed"

#!/usr/bin/env bash
# The CI recipe of docs/compare.md applied to this checkout's own benchmark suite: COMPARISONS comparisons of
# the unchanged code with itself (A/A), then one of the code against a build slowed by PATCH; each
# in interleaved rounds (tools/benchmark_rounds.sh) judged by `slcbench compare`. Everything lands in OUT.
#
#   bash tools/gate_check.sh OUT [COMPARISONS] [PATCH]
set -euo pipefail
out=${1:?usage: gate_check.sh OUT [COMPARISONS] [PATCH]}
comparisons=${2:-3}
patch=${3:-tools/slowdown-query-head.patch}
here=$(pwd)
mkdir -p "$out"
gate() {  # $1: folder with base/ and new/ rounds
    local rc=0
    PYTHONPATH="$here" python -m slcbench compare "$1/base" "$1/new" --max-regression 25% \
        --json "$1/compare.json" --markdown "$1/compare.md" >"$1/compare.txt" 2>&1 || rc=$?
    echo "$(basename "$1"): exit $rc" | tee -a "$out/verdicts.txt"
}
timed() {  # $1: name, then the command
    local name=$1 start
    shift
    start=$(date +%s)
    "$@"
    echo "$name: $(( $(date +%s) - start )) s" | tee -a "$out/walltimes.txt"
}
for i in $(seq 1 "$comparisons"); do
    timed "aa-$i" bash tools/benchmark_rounds.sh "$here" "$here" "$out/aa-$i"
    gate "$out/aa-$i"
done
slow=$(mktemp -d)
git worktree add -q --detach "$slow" HEAD
(cd "$slow" && git apply "$here/$patch")
timed slowed bash tools/benchmark_rounds.sh "$here" "$slow" "$out/slowed"
git worktree remove --force "$slow"
gate "$out/slowed"

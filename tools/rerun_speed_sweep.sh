#!/usr/bin/env bash
# One sweep of the paper's grid (5 architectures x 6 class counts, query rows too) on the lent GPU,
# with the GPU's state before it, its log and its wall time beside the results:
#
#   bash tools/rerun_speed_sweep.sh run1 --precision fp32
#   bash tools/rerun_speed_sweep.sh run1 --precision bf16 --channels-last
#
# Everything lands in one file, $OUT/<run>-<flags>.tar.gz (the device tool returns at most 8 files),
# holding <run>/speed-*.{json,csv,png}, gpu-state-<flags>.txt, log-<flags>.txt, walltimes-<flags>.txt.
# Unpack the tarballs of both runs into one folder, then check the targets:
#   python tools/check_speed_targets.py FOLDER/run1 FOLDER/run2
set -euo pipefail
run=${1:?usage: rerun_speed_sweep.sh RUN SPEED-FLAGS...}
shift
flags=$(printf '%s' "$*" | tr -cd 'a-z0-9')
work=$(mktemp -d)
mkdir -p "$work/$run"
nvidia-smi >"$work/$run/gpu-state-$flags.txt" 2>&1 || echo "nvidia-smi failed" >>"$work/$run/gpu-state-$flags.txt"
start=$(date +%s%N)
PYTHONUNBUFFERED=1 PYTHONPATH=. python3 -m slcbench speed --arch all --classes all --query --plot "$@" \
    -o "$work/$run" 2>&1 | tee "$work/$run/log-$flags.txt"
end=$(date +%s%N)
tenths=$(((end - start) / 100000000))
printf 'WALL %s: %d.%d s\n' "$*" $((tenths / 10)) $((tenths % 10)) >"$work/$run/walltimes-$flags.txt"
tar czf "${OUT:-.}/$run-$flags.tar.gz" -C "$work" "$run"

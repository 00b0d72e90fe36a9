#!/usr/bin/env bash
# Table III on a lent H200 in one device call: the head-efficiency probe, then the sweeps of the paper's
# grid (5 architectures x 6 class counts, --query with its three query heads, --pad-head 8) in order of
# priority, each started only if its estimated time fits in what is left of the budget:
#
#   device run:  bash tools/h200_table_iii.sh                       (timeout_s=600; default budget 540 s)
#   later calls: bash tools/h200_table_iii.sh fp32-run1             (the steps the earlier call skipped)
#
# Steps and estimates (from the H100 runs' batch times under the current protocol: A-B-B-A pairing
# doubles the samples per row, 3 ms samples, a steady-state warm-up, three query heads per k, about
# 1.35 s per row for --energy; the H200 has the H100's arithmetic and 1.4x its memory bandwidth):
#   probe       GPU state, pynvml check, the CUDA tests, tools/head_efficiency.py (bf16, fp32; 2048, 4096) ~80 s
#   bf16-run1   --precision bf16 --channels-last, with --energy                                             ~370 s
#   fp32-run1   --precision fp32 (FP32_RUN1_FLAGS; with --energy ~590 s, more than a call holds)           ~440 s
#   bf16-run2   --precision bf16 --channels-last (the repeat, no energy)                                    ~220 s
#   fp32-run2   --precision fp32 (the repeat)                                                              ~440 s
# So one 9-minute call holds the probe and bf16-run1, the next fp32-run1, the next bf16-run2, and the
# next fp32-run2: four calls for the whole plan; energy is read in bf16 only (the deployed precision).
# A repeat's estimate becomes its first run's wall time in this call (less the energy windows) + 10%.
# Set BUDGET_S to the seconds this call may use before packing (at most timeout_s - 45).
#
# Everything lands in at most 8 files under $OUT: <step>.tar.gz per step that ran (results, logs,
# nvidia-smi state, wall times) and h200-summary.txt (the script's log, skipped steps, the targets check).
# Unpack the tarballs into results/speed-h200/ (run1/, run2/, head-efficiency/), then:
#   python tools/check_speed_targets.py results/speed-h200/run1 results/speed-h200/run2
#
# nvidia-ml-py is on the H200 image (KINDS.md's package list); without it the sweeps run with null NVML
# fields and say so in their header. To carry it anyway, here, in the repo root (a ~50 KB wheel):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl nvidia-ml-py
# and start the device command with (carry: [".whl"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site;
set -uo pipefail
budget_s=${BUDGET_S:-540}
start_s=$(date +%s)
out=${OUT:-$PWD/h200-out}
mkdir -p "$out"
work=$(mktemp -d)
summary="$out/h200-summary.txt"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(probe bf16-run1 fp32-run1 bf16-run2 fp32-run2)
declare -A estimate_s=([probe]=80 [bf16-run1]=370 [fp32-run1]=440 [bf16-run2]=220 [fp32-run2]=440)
BF16_FLAGS="--precision bf16 --channels-last"
FP32_FLAGS="--precision fp32"
FP32_RUN1_FLAGS=${FP32_RUN1_FLAGS:-"$FP32_FLAGS"}

log() { printf '[%4ds] %s\n' $(($(date +%s) - start_s)) "$*" | tee -a "$summary"; }
left_s() { echo $((budget_s - ($(date +%s) - start_s))); }

gpu_state() {  # the card's clocks, power, temperature and processes, before or after a step
    {
        echo "== $(date -u +%FT%TZ) $1"
        nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active,utilization.gpu --format=csv
        nvidia-smi -q -d CLOCK,PERFORMANCE,POWER,TEMPERATURE 2>&1 | head -120
        nvidia-smi --query-compute-apps=pid,used_memory --format=csv
    } >>"$2" 2>&1
}

sweep() {  # sweep RUN FLAGS...: one sweep into $work/RUN, with its log, wall time and GPU state
    local run=$1
    shift
    local flags
    flags=$(printf '%s' "$*" | tr -cd 'a-z0-9')
    mkdir -p "$work/$run"
    gpu_state "before $*" "$work/$run/gpu-state-$flags.txt"
    local begin end tenths
    begin=$(date +%s%N)
    timeout -k 10 "$(left_s)" python3 -m slcbench speed --arch all --classes all --query --pad-head 8 --plot "$@" \
        -o "$work/$run" >"$work/$run/log-$flags.txt" 2>&1
    local status=$?
    end=$(date +%s%N)
    tenths=$(((end - begin) / 100000000))
    printf 'WALL %s: %d.%d s\n' "$*" $((tenths / 10)) $((tenths % 10)) >"$work/$run/walltimes-$flags.txt"
    gpu_state "after $*" "$work/$run/gpu-state-$flags.txt"
    tail -n 30 "$work/$run/log-$flags.txt" >>"$summary"
    return $status
}

probe() {
    mkdir -p "$work/head-efficiency"
    local folder="$work/head-efficiency"
    gpu_state "start of the call" "$folder/gpu-state.txt"
    nvidia-smi -q >"$folder/nvidia-smi-q.txt" 2>&1
    python3 -c "import pynvml; print('nvidia-ml-py', pynvml.__file__)" >"$folder/pynvml.txt" 2>&1
    python3 -m pip show nvidia-ml-py torch torchvision timm >>"$folder/pynvml.txt" 2>&1
    git rev-parse HEAD >"$folder/commit.txt" 2>&1
    # The tests that need CUDA (skipped on the CPU): query and padded heads replayed as CUDA graphs,
    # graph timing of a short kernel, and the real NVML found and read (its state printed).
    timeout -k 5 90 python3 -m pytest -q -s -p no:cacheprovider tests/speed/test_heads.py tests/speed/test_timing.py \
        tests/speed/test_nvml.py -k "cuda or real_gpu" >"$folder/cuda-tests.txt" 2>&1
    tail -n 5 "$folder/cuda-tests.txt" >>"$summary"
    timeout -k 10 "$(left_s)" python3 tools/head_efficiency.py --device cuda --precision bf16,fp32 --width 2048,4096 \
        --classes 262144,370727 --pad 8,64 --json "$folder/head-efficiency.json" >"$folder/head-efficiency.txt" 2>&1
    local status=$?
    cat "$folder/head-efficiency.txt" >>"$summary"
    return $status
}

run_step() {
    case $1 in
    probe) probe ;;
    bf16-run1) sweep run1 $BF16_FLAGS --energy ;;
    fp32-run1) sweep run1 $FP32_RUN1_FLAGS ;;
    bf16-run2) sweep run2 $BF16_FLAGS ;;
    fp32-run2) sweep run2 $FP32_FLAGS ;;
    *) log "unknown step $1 (probe, bf16-run1, fp32-run1, bf16-run2, fp32-run2)" && return 2 ;;
    esac
}

pack() {  # the step's folder into one file under $OUT, so that a later kill leaves it there
    local folder=$1
    [ -d "$work/$folder" ] && tar czf "$out/$folder.tar.gz" -C "$work" "$folder"
}

declare -A took_s=()
energy_share_s=150 # ~110 rows x 1.35 s of energy windows in a sweep with --energy

estimate() {  # a repeat's estimate from its first run's wall time in this call, when there is one
    local step=$1 first=${1%-run2}-run1
    if [[ $step == *-run2 && -n ${took_s[$first]:-} ]]; then
        local base=${took_s[$first]}
        [[ $first == bf16-run1 || $FP32_RUN1_FLAGS == *--energy* ]] && base=$((base - energy_share_s))
        echo $((base > 0 ? base * 11 / 10 : 0))
    else
        echo "${estimate_s[$step]:-0}"
    fi
}

log "budget ${budget_s} s; steps: ${steps[*]}"
for step in "${steps[@]}"; do
    need=$(estimate "$step")
    if [ "$(left_s)" -lt "$need" ]; then
        log "SKIPPED $step: estimated ${need} s, $(left_s) s left"
        continue
    fi
    log "START $step (estimated ${need} s, $(left_s) s left)"
    began=$(date +%s)
    run_step "$step"
    status=$?
    took_s[$step]=$(($(date +%s) - began))
    log "END $step: exit $status, ${took_s[$step]} s"
    case $step in
    probe) pack head-efficiency ;;
    *-run1) pack run1 ;;
    *-run2) pack run2 ;;
    esac
done

if [ -d "$work/run1" ] && ls "$work"/run1/speed-*.json >/dev/null 2>&1; then
    folders=("$work/run1")
    ls "$work"/run2/speed-*.json >/dev/null 2>&1 && folders+=("$work/run2")
    log "targets check: ${folders[*]}"
    python3 tools/check_speed_targets.py "${folders[@]}" >>"$summary" 2>&1
fi
log "done; files: $(ls "$out" | tr '\n' ' ')"

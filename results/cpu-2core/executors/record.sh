#!/usr/bin/env bash
# Wall time of one small sweep under each executor, three interleaved rounds, on this 2-core CPU machine.
# Run from the repository root, under the exclusive CPU lock:
#   flock -x /work/locks/cpu.lock results/cpu-2core/executors/record.sh
set -euo pipefail
here=results/cpu-2core/executors
sweep=(--arch resnet18,mobilenet_v3_small --classes 1,2^10,2^14 --device cpu --batches 6 --ci-target 0)
python -c "import torch, ray, submitit, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| ray', ray.__version__, '| submitit', submitit.__version__)" > "$here/versions.txt"
: > "$here/wall-times.tsv"
printf 'round\texecutor\twall_s\tmax_rss_kb\n' >> "$here/wall-times.tsv"
for round in 1 2 3; do
    for variant in inline process process-parallel-2 ray; do
        case "$variant" in
            process-parallel-2) options=(--executor process --parallel 2) ;;
            *) options=(--executor "$variant") ;;
        esac
        out="$here/runs/$variant"
        mkdir -p "$out"
        /usr/bin/time -f "%e %M" -o /tmp/executors-time.txt \
            python -m slcbench speed "${sweep[@]}" "${options[@]}" -o "$out" > "$out/console-$round.txt" 2>&1
        read -r wall rss < /tmp/executors-time.txt
        printf '%s\t%s\t%s\t%s\n' "$round" "$variant" "$wall" "$rss" >> "$here/wall-times.tsv"
    done
done
# What one fresh worker pays before it measures: a Python start and the sweep's imports (torch, torchvision).
: > "$here/import-cost.tsv"
printf 'run\twall_s\n' >> "$here/import-cost.tsv"
for run in 1 2 3 4 5; do
    /usr/bin/time -f "%e" -o /tmp/executors-time.txt python -c "import slcbench.speed.sweep"
    printf '%s\t%s\n' "$run" "$(cat /tmp/executors-time.txt)" >> "$here/import-cost.tsv"
done

#!/usr/bin/env bash
# What a person sees: each command run in a tmux terminal of 80 and of 200 columns, its screen kept in
# docs/screens/NAME-WIDTH.txt (lines joined where the terminal wrapped them, so an over-wide line shows).
# Usage: tools/capture_screens.sh [NAME...]   (default: every screen; needs tmux and an installed slcbench)
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/screens
runs=$(mktemp -d)  # the commands' own files: never in the checkout
# A server of its own: it starts with this shell's environment (PATH, the virtual environment).
tmux() { command tmux -L slcbench-screens "$@"; }
trap 'rm -rf "$runs"; tmux kill-server 2>/dev/null || true' EXIT
mkdir -p "$out"
digits=results/train-digits
quiet=results/cpu-2core/repeatability/quiet
busy=results/cpu-2core/repeatability/busy

declare -A screens=(
  [speed]="slcbench speed -o results/cpu-2core/screens"  # kept: the README quotes this run
  [evaluate]="slcbench evaluate $digits/self-norm.npz $digits/nce.npz $digits/batch-ce.npz --baseline $digits/cross-entropy.npz"
  [train]="slcbench train --loss all --steps 300 --out $runs/train-WIDTH"
  [compare]="slcbench compare $quiet/speed-20261201T161853Z.json $busy/speed-20261201T162007Z.json"
  [env]="slcbench env"
  [help]="slcbench --help"
)
for command in speed evaluate train compare env isbe; do
  screens[help-$command]="slcbench $command --help"
done

capture() {  # NAME WIDTH COMMAND
  local name=$1 width=$2 command=${3//WIDTH/$2}
  tmux kill-session -t slcbench-screens 2>/dev/null || true
  tmux new-session -d -s slcbench-screens -x "$width" -y 50 "env PS1='$ ' bash --norc --noprofile"
  tmux set-option -t slcbench-screens history-limit 20000 >/dev/null
  tmux send-keys -t slcbench-screens "clear; $command; tmux wait-for -S slcbench-done" Enter
  tmux wait-for slcbench-done
  {
    echo "\$ ${command//$runs//tmp/runs}"
    tmux capture-pane -t slcbench-screens -p -J -S - -E - \
      | sed -e 's/[[:space:]]*$//' -e "s|$runs|/tmp/runs|g" -e '/^\$$/d' \
      | awk 'NF {blank = 0} !NF {blank++} blank < 2'
  } > "$out/$name-$width.txt"
  echo "$out/$name-$width.txt"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!screens[@]}")
for name in "${names[@]}"; do
  for width in 80 200; do
    capture "$name" "$width" "${screens[$name]}"
  done
done

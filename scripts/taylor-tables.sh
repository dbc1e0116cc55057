#!/usr/bin/env bash
# Reproduces the README's Taylor-attention tables: softmax vs Taylor trained
# with the same budget, and softmax -> Taylor conversion by distillation, on
# the embedded synthetic set and on digits. Usage: scripts/taylor-tables.sh [OUT]
set -euo pipefail
vitc=${VITC:-bin/vitc}
out=${1:-runs/taylor-tables}
digits=${DIGITS:-.cache/digits.csv.gz}
mkdir -p "$out"
acc() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.2f %.1f' % (100*r['test_accuracy'], r['train_seconds']))" "$1/report.json"; }

run() { # name, args...
  local name=$1; shift
  [ -f "$out/$name/report.json" ] || "$vitc" train --out "$out/$name" "$@" >"$out/$name.log" 2>&1
  echo "$name $(acc "$out/$name")"
}

syn=(--epochs 10)
dig=(--data "digits:$digits" --model micro --patch 2 --epochs 60)
run syn-softmax "${syn[@]}"
run syn-taylor "${syn[@]}" --attention taylor --sparse-weight 0
run syn-taylor-sparse "${syn[@]}" --attention taylor --sparse-weight 0.3
run syn-convert --epochs 10 --attention taylor --sparse-weight 0 --init "$out/syn-softmax/model.safetensors" --teacher "$out/syn-softmax/model.safetensors" --lr 1e-3
run dig-softmax "${dig[@]}"
run dig-taylor "${dig[@]}" --attention taylor --sparse-weight 0
run dig-convert --data "digits:$digits" --model micro --patch 2 --epochs 60 --attention taylor --sparse-weight 0 --init "$out/dig-softmax/model.safetensors" --teacher "$out/dig-softmax/model.safetensors" --lr 1e-3

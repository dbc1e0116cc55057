#!/usr/bin/env bash
# The full pipeline of the README's pruning tables, on digits and on the
# embedded synthetic set: dense softmax -> Taylor (conversion by distillation)
# -> pruned (density 0.5 in 16x16 blocks, token keep 0.7 at three layers),
# pruning the softmax and the Taylor model each against itself as teacher.
# Usage: scripts/prune-pipeline.sh [OUT]   (env: VITC, DIGITS)
set -euo pipefail
vitc=${VITC:-bin/vitc}
out=${1:-runs/prune-pipeline}
digits=${DIGITS:-.cache/digits.csv.gz}
mkdir -p "$out"

train() { local name=$1; shift; [ -f "$out/$name/report.json" ] || "$vitc" train --out "$out/$name" "$@" >"$out/$name.log" 2>&1; }
prune() { local name=$1; shift; [ -f "$out/$name/report.json" ] || "$vitc" prune --out "$out/$name" "$@" >"$out/$name.log" 2>&1; }

dig=(--data "digits:$digits" --model micro --patch 2)
train dig-softmax "${dig[@]}" --epochs 60
train dig-taylor "${dig[@]}" --epochs 60 --attention taylor --sparse-weight 0 --lr 1e-3 \
  --init "$out/dig-softmax/model.safetensors" --teacher "$out/dig-softmax/model.safetensors"
prune dig-softmax-pruned --teacher "$out/dig-softmax/model.safetensors" --epochs 100
prune dig-taylor-pruned --teacher "$out/dig-taylor/model.safetensors" --epochs 150

train syn-softmax --epochs 10
train syn-taylor --epochs 10 --attention taylor --sparse-weight 0 --lr 1e-3 \
  --init "$out/syn-softmax/model.safetensors" --teacher "$out/syn-softmax/model.safetensors"
prune syn-softmax-pruned --teacher "$out/syn-softmax/model.safetensors" --epochs 20
prune syn-taylor-pruned --teacher "$out/syn-taylor/model.safetensors" --epochs 20

python3 - "$out" <<'PY'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
print(f"{'run':22} {'teacher':>8} {'pruned':>8} {'drop':>6} {'FLOPs x':>8} {'params':>17} {'train s':>8}")
for name in ("dig-softmax-pruned", "dig-taylor-pruned", "syn-softmax-pruned", "syn-taylor-pruned"):
    r = json.load(open(d / name / "report.json"))
    print(f"{name:22} {100*r['teacher_accuracy']:8.2f} {100*r['pruned_accuracy']:8.2f} {r['accuracy_drop_points']:6.2f} "
          f"{r['flops_reduction']:8.2f} {r['params_before']:>8}->{r['params_after']:<8} {r['train_seconds']:8.1f}")
PY

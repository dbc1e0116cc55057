#!/usr/bin/env bash
# The README's export table: the dense softmax and the pruned Taylor models
# of scripts/prune-pipeline.sh (same lineage: dense softmax -> Taylor by
# distillation -> pruned) exported to bundles and run on the simulator over
# the whole digits test split, with the pruned bundle's speed-up over the
# dense one from the cycle model.
# Usage: scripts/export-pipeline.sh [PIPELINE_DIR] [OUT]   (env: VITC, DIGITS,
# CALIB_METHOD: vitc export's --calib-method, default vitc's; ACT_BITS: its
# --act-bits, 8, 16 or auto, default vitc's; BATCH: both bundles' --batch,
# default 1, so that the speed-up is a ratio at one batch)
set -euo pipefail
vitc=${VITC:-bin/vitc}
runs=${1:-runs/prune-pipeline}
out=${2:-runs/export-pipeline}
digits=${DIGITS:-.cache/digits.csv.gz}
calib=(--data "digits:$digits" --batch "${BATCH:-1}")
[ -z "${CALIB_METHOD:-}" ] || calib+=(--calib-method "$CALIB_METHOD")
[ -z "${ACT_BITS:-}" ] || calib+=(--act-bits "$ACT_BITS")
mkdir -p "$out"
dense=$runs/dig-softmax/model.safetensors
pruned=$runs/dig-taylor-pruned/model.safetensors
for f in "$dense" "$pruned"; do
  [ -f "$f" ] || { echo "missing $f: run scripts/prune-pipeline.sh first" >&2; exit 2; }
done
"$vitc" export --checkpoint "$dense" "${calib[@]}" --out "$out/dense-softmax" --json >"$out/dense-softmax.export.json"
"$vitc" export --checkpoint "$pruned" "${calib[@]}" --out "$out/pruned-taylor" --json >"$out/pruned-taylor.export.json"
"$vitc" sim --bundle "$out/dense-softmax" --data "digits:$digits" --json >"$out/dense-softmax.sim.json"
"$vitc" sim --bundle "$out/pruned-taylor" --data "digits:$digits" --compare "$out/dense-softmax" --json >"$out/pruned-taylor.sim.json"
python3 - "$out" <<'PY'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
print(f"{'bundle':15} {'agreement':>9} {'int8 acc':>8} {'float acc':>9} {'cycles':>8} {'us/img':>7} {'DRAM B':>8} {'PE util':>7} {'tiles':>9}")
for name in ("dense-softmax", "pruned-taylor"):
    s = json.load(open(d / f"{name}.sim.json")); e = json.load(open(d / f"{name}.export.json"))
    print(f"{name:15} {100*s['top1_agreement']:8.2f}% {100*s['accuracy_int8']:7.2f}% {100*s['accuracy_float']:8.2f}% "
          f"{s['cycles']:8} {1e6*s['seconds']:7.1f} {s['bytes_moved']:8} {100*s['pe_utilisation']:6.1f}% {e['tiles_stored']:>4}/{e['tiles_dense']:<4}")
s = json.load(open(d / "pruned-taylor.sim.json"))
print(f"cycle-model speed-up of pruned Taylor over dense softmax: {s['speedup']:.2f}x")
PY

#!/usr/bin/env bash
# Side-by-side speed against PyTorch on this machine: runs ../shared/bench/torch_vit.py
# (Debian's python3-torch on OpenBLAS, 2 threads) and `vitc bench` alternately,
# REPEATS times per model, and prints each pair and the ratios of the medians.
# Usage: scripts/bench-vs-torch.sh [REPEATS]   (env: VITC, PYTHON, TORCH_VIT)
set -euo pipefail
vitc=${VITC:-bin/vitc}
py=${PYTHON:-/usr/bin/python3}
ref=${TORCH_VIT:-../shared/bench/torch_vit.py}
repeats=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$py" -c 'import torch' 2>/dev/null || { echo "bench-vs-torch: $py cannot import torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 2; }

for spec in "micro 64 20" "deit-tiny 8 5"; do
  read -r model batch steps <<<"$spec"
  for i in $(seq "$repeats"); do
    "$py" "$ref" --config "$model" --steps "$steps" --threads 2 >>"$out/$model.torch"
    "$vitc" bench --model "$model" --batch "$batch" --steps "$steps" --json >>"$out/$model.vitc"
  done
done

"$py" - "$out" <<'PY'
import json, statistics, sys, pathlib
d = pathlib.Path(sys.argv[1])
print(f"{'model':10} {'':6} {'torch img/s':>12} {'vitc img/s':>12} {'ratio':>6}")
for model in ("micro", "deit-tiny"):
    t = [json.loads(l) for l in open(d / f"{model}.torch")]
    v = [json.loads(l) for l in open(d / f"{model}.vitc")]
    for phase in ("train", "infer"):
        tm = statistics.median(r[f"{phase}_img_s"] for r in t)
        vm = statistics.median(r[f"{phase}_img_s"] for r in v)
        runs = ", ".join(f"{a[f'{phase}_img_s']:.1f}/{b[f'{phase}_img_s']:.1f}" for a, b in zip(t, v))
        print(f"{model:10} {phase:6} {tm:12.1f} {vm:12.1f} {vm/tm:6.2f}   (runs torch/vitc: {runs})")
    print(f"{model:10} peak RSS vitc {max(r['peak_rss_bytes'] for r in v)/2**20:.0f} MiB")
PY

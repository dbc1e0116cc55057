#!/usr/bin/env bash
# The speed table of docs/performance.md, side by side on this machine in one run:
# vitc (`vitc bench`), PyTorch 1.13 (../shared/bench/torch_vit.py, 2 threads) and
# onnxruntime 1.30 CPU (scripts/ort-bench.js, 2 threads), for micro, DeiT-Tiny and
# DeiT-Small with softmax attention, Taylor attention, and Taylor attention keeping 0.7 of
# the patch tokens after the blocks prune plans.
#
# onnxruntime runs the softmax model PyTorch exports (torch.onnx.export, the anchor a user
# would pick) and the Taylor ones vitc exports (`vitc export --format onnx`: PyTorch's
# reference has no token pruning), from the same random weights.
#
# OpenBLAS kernels: a machine may force older ones with OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE; this script unsets both for its runs (benchmarks only, never tests)
# and prints which kernels ran.
#
# Usage: scripts/bench-table.sh [MODELS...]   (default: micro deit-tiny deit-small)
#   env: VITC (bin/vitc), PYTHON (/usr/bin/python3), BENCH (../shared/bench),
#        SECONDS_PER_RUN (onnxruntime, default 5), OUT (keep the JSON lines here)
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
vitc=${VITC:-bin/vitc}
py=${PYTHON:-/usr/bin/python3}
bench=${BENCH:-../shared/bench}
secs=${SECONDS_PER_RUN:-5}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(micro deit-tiny deit-small)
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
"$py" -c 'import torch' 2>/dev/null || { echo "bench-table: $py cannot import torch (apt-get install python3-torch libopenblas0-pthread)" >&2; exit 2; }
bash scripts/setup-ort.sh
export ORT_NODE=${ORT_NODE:-$PWD/.cache/ort/node_modules/onnxruntime-node}
[ -d "$ORT_NODE" ] || { echo "bench-table: no onnxruntime-node at $ORT_NODE (scripts/setup-ort.sh)" >&2; exit 2; }
peak() { /usr/bin/time -f '%M' -o "$1" "${@:2}"; } # peak RSS in KiB into $1

for model in "${models[@]}"; do
  case $model in
    micro) chans=1 img=28 heads=4 batches="64" ;;
    deit-tiny) chans=3 img=224 heads=3 batches="1 8" ;;
    deit-small) chans=3 img=224 heads=6 batches="1 8" ;;
    *) echo "bench-table: unknown model $model" >&2; exit 2 ;;
  esac
  d=$out/$model
  mkdir -p "$d"
  # Random weights in PyTorch (timm names), the ONNX anchor, and vitc checkpoints of them.
  "$py" - "$bench" "$model" "$d" <<'PY'
import sys, torch
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, "tools/torchref")
import torch_vit as tv, torchref
model, d = sys.argv[2], sys.argv[3]
img, patch, chans, classes, dim, depth, heads, mlp, _ = tv.CONFIGS[model]
torch.manual_seed(0)
m = tv.ViT(img, patch, chans, classes, dim, depth, heads, mlp).eval()
torchref.write_safetensors(f"{d}/weights.safetensors", {k: v.detach() for k, v in m.state_dict().items()})
torch.onnx.export(m, torch.randn(1, chans, img, img), f"{d}/softmax-torch.onnx", input_names=["x"],
                  output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}}, opset_version=14)
PY
  "$vitc" import "$d/weights.safetensors" --heads "$heads" --ln-eps 1e-6 --out "$d/softmax.safetensors" >/dev/null 2>&1
  "$vitc" import "$d/weights.safetensors" --heads "$heads" --ln-eps 1e-6 --attention taylor --out "$d/taylor.safetensors" >/dev/null 2>&1
  # The token-pruned variant: the same checkpoint with the keep rate and layers prune records.
  layers=$("$vitc" bench --checkpoint "$d/taylor.safetensors" --token-keep 0.7 --batch 1 --steps 1 --warmup 0 --json 2>/dev/null |
    "$py" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["config"]["token_layers"]))')
  "$py" - "$d/taylor.safetensors" "$d/taylor-keep.safetensors" "$layers" <<'PY'
import json, struct, sys
src, dst, layers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; header = json.loads(f.read(n)); body = f.read()
meta = json.loads(header["__metadata__"]["vitc"]); meta["token_keep"], meta["token_layers"] = 0.7, layers
header["__metadata__"]["vitc"] = json.dumps(meta)
h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + body)
PY
  for kind in softmax taylor taylor-keep; do
    "$vitc" export --format onnx --checkpoint "$d/$kind.safetensors" --out "$d/$kind-vitc.onnx" >/dev/null 2>&1
  done
  for kind in softmax taylor taylor-keep; do
    extra=(); [ "$kind" = taylor-keep ] && extra=(--token-keep 0.7)
    [ "$kind" = softmax ] || extra+=(--attention taylor)
    for b in $batches; do
      steps=10; [ "$model" != micro ] && steps=$((b == 1 ? 10 : 4))
      peak "$d/rss" "$vitc" bench --model "$model" "${extra[@]}" --batch "$b" --steps "$steps" --json >"$d/vitc-$kind-b$b.json"
      "$py" - "$d/vitc-$kind-b$b.json" "$d/rss" "$model" "$kind" "$b" >>"$out/results.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"runner": "vitc", "model": sys.argv[3], "kind": sys.argv[4], "batch": int(sys.argv[5]),
  "train_img_s": r["train_img_s"], "infer_img_s": r["infer_img_s"], "train_gflops": r["train_gflops"],
  "infer_gflops": r["infer_gflops"], "peak_gflops": r["peak_gflops"], "peak_rss_mib": int(open(sys.argv[2]).read().split()[-1]) / 1024,
  "gflops_per_image": r["flops_per_image"] / 1e9, "blas": r["blas"]}))
PY
      onnx=$d/$kind-vitc.onnx; [ "$kind" = softmax ] && onnx=$d/softmax-torch.onnx
      node scripts/ort-bench.js "$onnx" "$chans" "$img" "$img" "$b" 2 "$secs" |
        "$py" -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"runner":"onnxruntime","model":sys.argv[1],"kind":sys.argv[2],"batch":int(sys.argv[3]),"infer_img_s":r["img_per_s"],"onnx":sys.argv[4]}))' \
          "$model" "$kind" "$b" "$(basename "$onnx")" >>"$out/results.jsonl"
    done
    if [ "$kind" != taylor-keep ]; then # PyTorch's reference has no token pruning
      t=(); [ "$kind" = taylor ] && t=(--taylor)
      peak "$d/rss" "$py" "$bench/torch_vit.py" --config "$model" "${t[@]}" --steps 3 --threads 2 >"$d/torch-$kind.json"
      "$py" - "$d/torch-$kind.json" "$d/rss" "$model" "$kind" >>"$out/results.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"runner": "pytorch", "model": sys.argv[3], "kind": sys.argv[4], "batch": r["batch"],
  "train_img_s": r["train_img_s"], "infer_img_s": r["infer_img_s"], "peak_rss_mib": int(open(sys.argv[2]).read().split()[-1]) / 1024}))
PY
    fi
  done
done

"$py" - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
v = [r for r in rows if r["runner"] == "vitc"]
print(f"kernels: {v[0]['blas']}; machine peak (best float32 matrix product) {max(r['peak_gflops'] for r in v):.0f} GFLOPS\n")
print("| model | attention | batch | vitc infer img/s (GFLOPS) | onnxruntime infer img/s | vitc / ort | PyTorch infer img/s | vitc train img/s (GFLOPS) | PyTorch train img/s | vitc / PyTorch train | peak RSS vitc / PyTorch MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in v:
    key = lambda x: x["model"] == r["model"] and x["kind"] == r["kind"]
    o = next((x for x in rows if x["runner"] == "onnxruntime" and key(x) and x["batch"] == r["batch"]), None)
    t = next((x for x in rows if x["runner"] == "pytorch" and key(x) and x["batch"] == r["batch"]), None)
    f = lambda x, k: f"{x[k]:.1f}" if x else "—"
    ratio = lambda a, b: f"{a/b:.2f}×" if b else "—"
    print(f"| {r['model']} | {r['kind']} | {r['batch']} | {r['infer_img_s']:.1f} ({r['infer_gflops']:.0f}) | {f(o, 'infer_img_s')} | "
          f"{ratio(r['infer_img_s'], o['infer_img_s']) if o else '—'} | {f(t, 'infer_img_s')} | {r['train_img_s']:.1f} ({r['train_gflops']:.0f}) | "
          f"{f(t, 'train_img_s')} | {ratio(r['train_img_s'], t['train_img_s']) if t else '—'} | {r['peak_rss_mib']:.0f} / {f(t, 'peak_rss_mib')} |")
PY

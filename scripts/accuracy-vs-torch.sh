#!/usr/bin/env bash
# Side-by-side accuracy against a plain PyTorch loop: trains the reference ViT
# (../shared/bench/torch_train_folder.py: micro dims, AdamW 1e-3, batch 64, cosine,
# label smoothing 0.1, no augmentation, torch's init) and `vitc train` with its
# defaults (plus VITC_ARGS) on the same image folder, one after the other, and
# prints both test accuracies and training times. The machine should be otherwise
# idle: the times are wall-clock seconds of the training loops.
#
# Usage: scripts/accuracy-vs-torch.sh DATA EPOCHS PATCH [--taylor]
#   DATA  folder:DIR (DIR/{train,test}/<class>/*.png), digits:FILE (converted to a
#         folder once, into .cache/digits-folder, by scripts/data-to-folder.py) or
#         idx:DIR (MNIST-format files; all of them, converted to .cache/<name>-folder)
#   --taylor  Taylor attention on both sides (vitc: --attention taylor)
# Env: VITC (bin/vitc), PYTHON (/usr/bin/python3), TORCH_FOLDER
#      (../shared/bench/torch_train_folder.py), VITC_ARGS (extra vitc train flags)
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,18p "$0" >&2; exit 2; }
data=$1 epochs=$2 patch=$3 taylor=${4:-}
vitc=${VITC:-bin/vitc}
py=${PYTHON:-/usr/bin/python3}
ref=${TORCH_FOLDER:-../shared/bench/torch_train_folder.py}
here=$(dirname "$0")
"$py" -c 'import torch, PIL' 2>/dev/null || { echo "accuracy-vs-torch: $py cannot import torch and PIL (apt-get install python3-torch libopenblas0-pthread python3-pil)" >&2; exit 2; }

case $data in
  folder:*) dir=${data#folder:} ;;
  digits:*) dir=.cache/digits-folder
            [ -d "$dir/train" ] || "$py" "$here/data-to-folder.py" digits "${data#digits:}" "$dir" ;;
  idx:*)    dir=.cache/$(basename "${data#idx:}")-folder
            [ -d "$dir/train" ] || "$py" "$here/data-to-folder.py" idx "${data#idx:}" "$dir" ;;
  *) echo "accuracy-vs-torch: DATA must be folder:DIR, digits:FILE or idx:DIR" >&2; exit 2 ;;
esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
targs=() vargs=()
if [ "$taylor" = --taylor ]; then targs=(--taylor); vargs=(--attention taylor); fi

"$py" "$ref" "$dir" --epochs "$epochs" --patch "$patch" "${targs[@]}" >"$out/torch.json"
# shellcheck disable=SC2086
"$vitc" train --data "folder:$dir" --patch "$patch" --epochs "$epochs" "${vargs[@]}" \
  --out "$out/run" --checkpoint-every 0 --json ${VITC_ARGS:-} >"$out/vitc.json" 2>"$out/vitc.log" ||
  { cat "$out/vitc.log" >&2; exit 1; }

"$py" - "$out" "$dir" "$epochs" <<'PY'
import json, sys
d, data, epochs = sys.argv[1:]
t = json.load(open(f"{d}/torch.json"))
v = json.load(open(f"{d}/vitc.json"))
print(f"{data}, {epochs} epochs, {'Taylor' if t['taylor'] else 'softmax'} attention")
print(f"{'':8} {'test acc':>9} {'train s':>8}")
print(f"{'pytorch':8} {100*t['test_accuracy']:8.2f}% {t['train_seconds']:8.1f}")
print(f"{'vitc':8} {100*v['test_accuracy']:8.2f}% {v['train_seconds']:8.1f}   (recipe {v.get('recipe', '?')})")
print(f"vitc − pytorch: {100*(v['test_accuracy']-t['test_accuracy']):+.2f} points, {t['train_seconds']/v['train_seconds']:.2f}× the speed")
PY

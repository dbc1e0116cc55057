#!/usr/bin/env bash
# "Published" ViTs for acceptance: timm-layout models that PyTorch trained and wrote
# (tools/torchref/published.py: bare float32 safetensors + MODEL.json), whose heads,
# LayerNorm eps and normalisation vitc's defaults for a bare file get wrong. Prepares the
# data folders under .cache/, trains each model that is not there yet (one after the other;
# tens of minutes each on 2 threads), then checks `vitc eval`: with the right flags its top-1
# must be PyTorch's (within one image), with the defaults it must be clearly worse.
#
# Usage: scripts/published-models.sh [fashion] [cifar]     (default: both)
#   fashion  Fashion-MNIST, first 8000/2000 images (Debian's dataset-fashion-mnist), grey
#            28x28: dim 128, depth 6, heads 4, MLP 256, patch 4, eps 1e-5, mean/std 0.5, 15 epochs
#   cifar    ../shared/data/cifar10-subset.tar.gz (5000/1000 JPEGs), RGB 32x32: the same body,
#            mean/std 0.5 per channel (vitc's RGB default is ImageNet's), 30 epochs. Also
#            checked on a PNG copy with PIL's pixels (.cache/cifar-png-folder): vitc decodes
#            JPEG chroma differently from PIL (see tools/torchref/README.md).
# Env: VITC (bin/vitc), PYTHON (/usr/bin/python3), OUT (.cache/published)
set -euo pipefail
vitc=${VITC:-bin/vitc}
py=${PYTHON:-/usr/bin/python3}
out=${OUT:-.cache/published}
here=$(dirname "$0")
"$py" -c 'import torch, PIL' 2>/dev/null || { echo "published-models: $py cannot import torch and PIL (apt-get install python3-torch libopenblas0-pthread python3-pil)" >&2; exit 2; }
[ -x "$vitc" ] || { echo "published-models: no $vitc (make build)" >&2; exit 2; }
mkdir -p "$out"
body=(--dim 128 --depth 6 --heads 4 --mlp-hidden 256 --patch 4 --eps 1e-5 --seed 0)

data() {
  case $1 in
    fashion)
      [ -d .cache/fashion-folder/train ] && return
      local tmp; tmp=$(mktemp -d)
      (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null && dpkg -x dataset-fashion-mnist_*.deb x)
      "$py" "$here/data-to-folder.py" idx "$tmp/x/usr/share/datasets/fashion-mnist" .cache/fashion-folder \
        --train 8000 --test 2000 --class-names fashion-mnist
      rm -rf "$tmp" ;;
    cifar)
      [ -d .cache/cifar-folder/train ] || tar xzf ../shared/data/cifar10-subset.tar.gz -C .cache/
      [ -d .cache/cifar-png-folder/train ] || "$py" "$here/data-to-folder.py" png .cache/cifar-folder .cache/cifar-png-folder ;;
  esac
}

top1() { # checkpoint data [flags...]: "accuracy correct n"
  local ck=$1 d=$2; shift 2
  "$vitc" eval --json --checkpoint "$ck" --data "folder:$d" "$@" 2>/dev/null |
    "$py" -c 'import json, sys; d = json.load(sys.stdin); print("%.4f %d %d" % (d["accuracy"], round(d["accuracy"] * d["n"]), d["n"]))'
}

check() { # name folder mean [extra folder]
  local name=$1 dir=$2 m=$3 ck=$out/$1_vit.safetensors
  local t; t=$("$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["test_correct"], d["n_test"], d["train_seconds"])' "${ck%.safetensors}.json")
  read -r tc tn ts <<<"$t"
  echo "$name: torch $tc/$tn ($(awk "BEGIN{printf \"%.2f\", 100*$tc/$tn}") %), trained in ${ts}s"
  local fail=0
  for d in "$dir" "${@:4}"; do
    read -r ra rc rn <<<"$(top1 "$ck" "$d" --heads 4 --ln-eps 1e-5 --mean "$m" --std "$m")"
    read -r da dc dn <<<"$(top1 "$ck" "$d")"
    local diff=$((rc > tc ? rc - tc : tc - rc))
    echo "  vitc on $d: right flags $rc/$rn, defaults $dc/$dn"
    if [ "$d" = "$dir" ] && [ "$diff" -gt 1 ]; then
      echo "  (right flags differ from torch by $diff images: see tools/torchref/README.md on JPEG decoding)"
      [[ $d == *cifar-folder ]] || fail=1
    fi
    [[ $d == *png-folder && $diff -gt 1 ]] && fail=1
    [ "$dc" -lt $((rc - rn / 20)) ] || { echo "  defaults are not clearly worse" >&2; fail=1; }
  done
  return $fail
}

models=("$@"); [ ${#models[@]} -gt 0 ] || models=(fashion cifar)
status=0
for m in "${models[@]}"; do
  data "$m"
  case $m in
    fashion) dir=.cache/fashion-folder mean=0.5 epochs=15 extra=() ;;
    cifar)   dir=.cache/cifar-folder mean=0.5,0.5,0.5 epochs=30 extra=(.cache/cifar-png-folder) ;;
    *) echo "published-models: unknown model $m (fashion, cifar)" >&2; exit 2 ;;
  esac
  ck=$out/${m}_vit.safetensors
  [ -f "$ck" ] || "$py" tools/torchref/published.py --data "$dir" "${body[@]}" --mean "$mean" --std "$mean" \
    --epochs "$epochs" --out "$ck" 2>"$out/$m.log"
  check "$m" "$dir" "$mean" "${extra[@]}" || status=1
done
exit $status

#!/usr/bin/env bash
# Installs onnxruntime-node (CPU) into .cache/ort for the test that runs
# vitc's ONNX export with onnxruntime (export/onnx). The package ships its
# native library, so --ignore-scripts downloads nothing else; it takes a few
# seconds and ~290 MB. Without node/npm, or when the install fails (no
# registry), it says so and exits 0: that test then skips with a message.
set -uo pipefail
dir=.cache/ort
version=1.30.0
if [ -f "$dir/node_modules/onnxruntime-node/package.json" ] &&
  grep -q "\"version\": \"$version\"" "$dir/node_modules/onnxruntime-node/package.json"; then
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-ort: node/npm not installed: the onnxruntime test of the ONNX export will skip" >&2
  exit 0
fi
mkdir -p "$dir"
if ! (cd "$dir" && timeout 120 npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$version" >/dev/null); then
  echo "setup-ort: npm install onnxruntime-node@$version failed: the onnxruntime test of the ONNX export will skip" >&2
fi
exit 0

#!/usr/bin/env bash
# Portability check for arm64, where Go fuses a*b+c into one FMA instruction
# and so rounds differently from amd64: the pure-Go build must vet and its
# tests must compile for arm64, and the tests whose arithmetic FMA touches
# (autograd, distill, taylorattn) run under qemu-user's emulation, so that an
# assertion that only holds with amd64 rounding fails here, not on a user's
# machine. Installs qemu-user when it is missing (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOARCH=arm64 CGO_ENABLED=0

go vet ./...
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go test -c -o "$out" ./...
echo "arm64: vet clean, $(ls "$out" | wc -l) test binaries compile"

if ! command -v qemu-aarch64 >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test-arm64: installing qemu-user" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user >/dev/null
fi
go test -exec qemu-aarch64 ./autograd/ ./distill/ ./taylorattn/

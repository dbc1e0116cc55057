#!/usr/bin/env bash
# Installs what vitc's fast build needs on a Debian/Ubuntu machine: OpenBLAS
# (for the `openblas` build tag) and a C compiler for cgo. Go itself must be
# 1.26 or newer; an older go fetches the right toolchain by itself
# (GOTOOLCHAIN=auto) from the module proxy.
set -euo pipefail

have_openblas() { [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/openblas/cblas.h ] || ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; }

missing=()
have_openblas || missing+=(libopenblas-dev)
command -v gcc >/dev/null || missing+=(gcc)
command -v go >/dev/null || missing+=(golang-go)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# The suite again, the way other machines would run it, so that a result that
# holds only on this CPU or core count fails here:
#   - with OpenBLAS's kernels for other CPUs (OPENBLAS_CORETYPE): an AMD Zen
#     machine and an AVX2-only Intel one pick other kernels, which round
#     differently in the last bits (Zen reproduces the failure an AMD EPYC
#     user reported);
#   - on one core (GOMAXPROCS=1): results must not depend on the core count;
#   - the pure-Go build (no cgo, gonum's kernels);
#   - arm64, where Go fuses multiply-adds (scripts/test-arm64.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
TAGS=${TAGS:-openblas}
numeric=(./autograd/... ./vit/... ./distill ./taylorattn ./tokenprune ./blockprune)

# Forcing a kernel needs the instructions it uses: Zen's and Haswell's need
# AVX2 and FMA. Elsewhere (arm64, older x86) only the core count changes.
if [ "$TAGS" = openblas ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo; then
  # -short: the kill-and-resume tests compare a run with itself, not two
  # code paths, and take minutes.
  OPENBLAS_CORETYPE=Zen $GO test -short -count=1 -tags "$TAGS" ./...
  GOMAXPROCS=1 OPENBLAS_CORETYPE=Haswell $GO test -count=1 -tags "$TAGS" "${numeric[@]}" ./export/...
else
  echo "test-portability: no AVX2+FMA here, so no forced OpenBLAS kernels" >&2
  GOMAXPROCS=1 $GO test -count=1 -tags "$TAGS" "${numeric[@]}"
fi

CGO_ENABLED=0 $GO test ./autograd/... ./vit/...
CGO_ENABLED=0 $GO build -o /dev/null ./cmd/vitc
scripts/test-arm64.sh

#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints one line per
# target: package, target, executions, new corpus entries, result. A crash
# leaves its input in the package's testdata/fuzz/<target>/ for `go test` to
# replay. Minimisation is capped at 1 s: the checkpoint target costs
# milliseconds per input, and the default 60 s per new input starved it.
# Usage: scripts/fuzz-all.sh [SECONDS]
set -uo pipefail
secs=${1:-60}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    log=$(mktemp)
    if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" -fuzzminimizetime 1s >"$log" 2>&1; then result=ok; else result=FAIL; status=1; fi
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    interesting=$(grep -o 'new interesting: [0-9]*' "$log" | tail -1 | cut -d' ' -f3)
    printf '%-28s %-22s %10s execs %5s new  %s\n' "${pkg#vitc/}" "$target" "${execs:-?}" "${interesting:-?}" "$result"
    [ "$result" = FAIL ] && grep -m5 -E 'panic|Error|failing input|--- FAIL' "$log" | sed 's/^/    /'
    rm -f "$log"
  done
done
exit $status

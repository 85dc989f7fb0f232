#!/usr/bin/env bash
# Runs the whole Holdfast test suite: builds the solution, brings up what the tests need
# (nothing external yet), runs every test project and prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each scripts/test-deps/NAME.sh brings up one thing the tests need (installing it when missing, idempotently) and
# may define a function holdfast_test_deps_stop_NAME that stops it again; every one found is called on exit.
log="$(mktemp)"
holdfast_test_deps_stop_all() {
  local fn
  # Not this function itself (its name has the same prefix): calling it would recurse until bash crashes (exit 139).
  for fn in $(declare -F | awk '{print $3}' | grep '^holdfast_test_deps_stop_' | grep -vx 'holdfast_test_deps_stop_all' || true); do
    "$fn" || true
  done
}
trap 'rm -f "$log"; holdfast_test_deps_stop_all' EXIT
for dep in scripts/test-deps/*.sh; do
  [[ -e "$dep" ]] || continue
  # shellcheck source=/dev/null
  source "$dep"
done

set +e
dotnet test Holdfast.slnx --configuration Release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# dotnet test prints one "Passed!/Failed! - Failed: N, Passed: N, Skipped: N" line per test assembly.
read -r passed failed skipped < <(
  sed -n 's/.*Failed:[[:space:]]*\([0-9]\+\),[[:space:]]*Passed:[[:space:]]*\([0-9]\+\),[[:space:]]*Skipped:[[:space:]]*\([0-9]\+\).*/\2 \1 \3/p' "$log" |
    awk '{p+=$1; f+=$2; s+=$3} END {printf "%d %d %d\n", p, f, s}'
)
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
if [[ $status -eq 0 && $passed -eq 0 ]]; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"

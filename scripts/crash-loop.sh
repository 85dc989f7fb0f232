#!/usr/bin/env bash
# The crash loop: the real `holdfast serve` under generation and bridge-bot load is SIGKILLed at random moments N
# times and started again each time; after every kill `PRAGMA integrity_check` must say ok, every acknowledged control
# must be honoured, no output that was read back as stored may be lost, bots keep their last acknowledged message, and
# at the end no session may be stuck and every output must equal an uninterrupted run's. It is
# CrashLoopTests (tests/Holdfast.Server.Tests), which the normal test command runs with 3 kills.
#
#   scripts/crash-loop.sh [--kills N] [--seed S]        (default: 5 kills; the long form is e.g. --kills 100)
#
# Needs only the .NET SDK (it builds what it needs, from a clone or an exported tree). Ends with
# `crash-loop: N kills, L lost, S stuck, C corrupt`; exits non-zero unless all three are 0.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=5
seed=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kills) kills="${2:?--kills takes a number}"; shift 2 ;;
    --seed) seed="${2:?--seed takes a number}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "crash-loop.sh: unknown option '$1' (try --kills N, --seed S)" >&2; exit 2 ;;
  esac
done
[[ "$kills" =~ ^[1-9][0-9]*$ ]] || { echo "crash-loop.sh: --kills takes a positive number, got '$kills'" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/server-check.sh
source scripts/lib/server-check.sh
server_check_build crash-loop.sh "$work"

echo "running the crash loop: $kills kills …" >&2
server_check_run "$work" CrashLoopTests HOLDFAST_CRASH_KILLS="$kills" HOLDFAST_CRASH_SUMMARY="$work/summary" ${seed:+HOLDFAST_CRASH_SEED=$seed}
status=$server_check_status
# The test's own lines (seed, counts, any problem), without the runner's noise.
sed -n '/Standard Output Messages:/,/^$/p' "$work/test.log" | sed '1d;/^$/d;/crash-loop:/d' >&2 || true
if [[ ! -s "$work/summary" ]]; then
  tail -60 "$work/test.log" >&2
  echo "crash-loop: $kills kills, did not finish (see above)"
  exit 1
fi
cat "$work/summary"
exit "$status"

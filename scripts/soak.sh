#!/usr/bin/env bash
# The soak: the real `holdfast serve` under mixed load (generations started, streamed over SSE, paused, resumed,
# cancelled and deleted; bridge-bot messages; reads) for a given time, after a warm-up, sampling the server's resident
# memory, open handles and p99 request latency every half second. Flat or it fails: memory and handles grow less than
# 10 % from the second quarter to the last, and (from 120 s on) p99 latency less than 2x. Writes samples.csv and
# soak.html (a chart of the three series) into the output folder. It is SoakTests (tests/Holdfast.Server.Tests); the
# normal test command runs it for 20 s and checks the leak bounds only.
#
#   scripts/soak.sh [--seconds N] [--output DIR]     (default: 600 s into artifacts/soak; short: --seconds 20)
#
# Needs only the .NET SDK (it builds what it needs, from a clone or an exported tree). Ends with `soak: …`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
out="artifacts/soak"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds takes a number}"; shift 2 ;;
    --output) out="${2:?--output takes a folder}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option '$1' (try --seconds N, --output DIR)" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: --seconds takes a positive number, got '$seconds'" >&2; exit 2; }
(( seconds <= 7000 )) || { echo "soak.sh: --seconds is at most 7000 (the test's backstop timeout)" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/server-check.sh
source scripts/lib/server-check.sh
server_check_build soak.sh "$work"

echo "soaking for $seconds s (plus warm-up) …" >&2
rm -f "$out/summary.txt"
server_check_run "$work" SoakTests HOLDFAST_SOAK_SECONDS="$seconds" HOLDFAST_SOAK_REPORT="$out"
status=$server_check_status
if [[ ! -s "$out/summary.txt" ]]; then
  tail -60 "$work/test.log" >&2
  echo "soak: did not finish (see above)"
  exit 1
fi
grep -E "Should|Assert" "$work/test.log" | head -5 >&2 || true
echo "chart: $out/soak.html, samples: $out/samples.csv" >&2
cat "$out/summary.txt"
exit "$status"

#!/usr/bin/env bash
# Fuzz every endpoint of a real server for a given time: random bytes, invalid UTF-8, deep JSON, huge strings, wrong
# content types, injection strings, odd ids, queries and headers, slow bodies, as an admin, a user, the socket and
# nobody. No answer may be a 5xx, the server must keep answering, and data no request names must read back unchanged
# from a file that passes `PRAGMA integrity_check`. It is EndpointFuzzTests (tests/Holdfast.Server.Tests) run for
# longer: the normal test command runs it with 2,000 requests.
#
#   scripts/fuzz.sh [--seconds N] [--seed S]      (default: 20 seconds; the long form is e.g. --seconds 1800)
#
# Needs only the .NET SDK (it builds what it needs, from a clone or an exported tree). Ends with
# `fuzz: N requests, E 5xx, C crashes`; exits non-zero unless both are 0 and the stored data is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
seed=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds takes a number}"; shift 2 ;;
    --seed) seed="${2:?--seed takes a number}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option '$1' (try --seconds N, --seed S)" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds takes a positive number, got '$seconds'" >&2; exit 2; }
(( seconds <= 3000 )) || { echo "fuzz.sh: --seconds is at most 3000 (the test's backstop timeout is 55 minutes)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=lib/server-check.sh
source scripts/lib/server-check.sh
server_check_build fuzz.sh "$work"

echo "fuzzing for $seconds s …" >&2
server_check_run "$work" EndpointFuzzTests HOLDFAST_FUZZ_SECONDS="$seconds" HOLDFAST_FUZZ_SUMMARY="$work/summary" ${seed:+HOLDFAST_FUZZ_SEED=$seed}
status=$server_check_status
sed -n '/Standard Output Messages:/,/^$/p' "$work/test.log" | sed '1d;/^$/d;/ endpoints: /d;/^ *fuzz:/d' >&2 || true
if [[ ! -s "$work/summary" ]]; then
  tail -60 "$work/test.log" >&2
  echo "fuzz: did not finish (see above)"
  exit 1
fi
grep "^fuzz:" "$work/summary"
exit "$status"

#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the dashboard's browser tests (tests/Holdfast.Dashboard.Tests), which drive
# /usr/bin/chromium through Microsoft.Playwright's executable-path option: Playwright never downloads a browser.
# Installs the packages with apt-get when they are missing (non-interactive, idempotent; CI runs it as root with
# CI=true and no stdin). Sourced by scripts/test.sh; also runs on its own: bash scripts/test-deps/chromium.sh
holdfast_test_deps_chromium() {
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    return 0
  fi

  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "chromium.sh: /usr/bin/chromium is missing and this user cannot install it (not root, no sudo);" \
        "run: apt-get install chromium chromium-driver" >&2
      return 1
    fi
    sudo=(sudo -n)
  fi

  echo "chromium.sh: installing Debian's chromium and chromium-driver with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q </dev/null >&2 || return 1
  "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver </dev/null >&2 || return 1
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "chromium.sh: apt-get finished but /usr/bin/chromium is still missing" >&2
    return 1
  fi
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  set -euo pipefail
  holdfast_test_deps_chromium
  /usr/bin/chromium --version
else
  # Sourced by scripts/test.sh (set -e there): a failed install stops the run before any test.
  holdfast_test_deps_chromium
fi

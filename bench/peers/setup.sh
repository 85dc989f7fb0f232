#!/usr/bin/env bash
# Installs the peers (LangGraph.js checkpointers, from npm) with better-sqlite3's native build; idempotent.
# npm 11 runs a package's install scripts only once approved: `npm install-scripts approve better-sqlite3` (kept in
# package.json's allowScripts), then `npm rebuild better-sqlite3` builds it. An npm that honours allowScripts (or runs
# install scripts anyway) builds it during `npm ci` already: then it is not built a second time (compiling SQLite takes
# minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")"
native=node_modules/better-sqlite3/build/Release/better_sqlite3.node
if [[ ! -f $native || ! -d node_modules/@langchain/langgraph-checkpoint-postgres ]]; then
  npm ci --no-audit --no-fund >&2
  if [[ ! -f $native ]]; then
    npm install-scripts approve better-sqlite3 >&2 2>/dev/null || true
    npm rebuild better-sqlite3 >&2
  fi
fi
node -e "const D = require('better-sqlite3'); new D(':memory:').close()"

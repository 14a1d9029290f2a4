#!/usr/bin/env bash
# Every check: install (Node 24 if the machine's is older; it also builds the console), start Redis if
# none answers, install chromium (the console's browser tests) and tini (the container-signal tests)
# if missing, then lint, typecheck, dependency and cycle checks, and the whole test suite. A
# redis-server this script started is stopped when it ends.
source "$(dirname "$0")/lib.sh"
install_deps
ensure_redis "it is stopped when the checks end"
trap stop_started_redis EXIT
ensure_chromium
ensure_tini
"${PNPM[@]}" run lint
"${PNPM[@]}" run typecheck
"${PNPM[@]}" run deps     # knip: no unused or unlisted dependencies, no unused files
"${PNPM[@]}" run cycles   # madge: no import cycles
"${PNPM[@]}" run test

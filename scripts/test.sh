#!/usr/bin/env bash
# Every check: install (Node 24 if the machine's is older), start Redis if none answers, then lint,
# typecheck, dependency and cycle checks, and the whole test suite.
source "$(dirname "$0")/lib.sh"
install_deps
ensure_redis
"${PNPM[@]}" run lint
"${PNPM[@]}" run typecheck
"${PNPM[@]}" run deps     # knip: no unused or unlisted dependencies, no unused files
"${PNPM[@]}" run cycles   # madge: no import cycles
"${PNPM[@]}" run test

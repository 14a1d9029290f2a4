#!/usr/bin/env bash
# Every check: install, start Redis if none answers, then lint, typecheck and the whole test suite.
source "$(dirname "$0")/lib.sh"
install_deps
ensure_redis
"${PNPM[@]}" run lint
"${PNPM[@]}" run typecheck
"${PNPM[@]}" run test

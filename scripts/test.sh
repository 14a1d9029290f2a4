#!/usr/bin/env bash
# Every check: install (which builds the console), start Redis if none answers, install chromium if
# missing (the console's browser tests), then lint, typecheck and the whole test suite.
source "$(dirname "$0")/lib.sh"
install_deps
ensure_redis
ensure_chromium
"${PNPM[@]}" run lint
"${PNPM[@]}" run typecheck
"${PNPM[@]}" run test

#!/usr/bin/env bash
# The demo end to end: install, start Redis if none answers, then API + worker + the transfer recipe.
source "$(dirname "$0")/lib.sh"
install_deps
ensure_redis
exec "${PNPM[@]}" run demo "$@"

#!/usr/bin/env bash
# The demo end to end: install, start Redis if none answers, then API + worker + the transfer recipe.
# A redis-server the demo started is stopped when it ends; `--keep-redis` keeps it running.
source "$(dirname "$0")/lib.sh"
KEEP_REDIS=0
args=()
for a in "$@"; do
  if [ "$a" = "--keep-redis" ]; then KEEP_REDIS=1; else args+=("$a"); fi
done
install_deps
if [ "$KEEP_REDIS" = 1 ]; then
  ensure_redis "it keeps running after the demo (--keep-redis)"
else
  ensure_redis "it is stopped when the demo ends (--keep-redis keeps it)"
  trap stop_started_redis EXIT
fi
"${PNPM[@]}" run demo "${args[@]+"${args[@]}"}"

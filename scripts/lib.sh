# Shared by demo.sh, test.sh and .ci/run: find or get pnpm, install, make sure Redis answers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
hostport="${REDIS_URL#redis://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
REDIS_HOST="${hostport%%:*}"; REDIS_PORT="${hostport##*:}"
[ "$REDIS_PORT" = "$REDIS_HOST" ] && REDIS_PORT=6379
STARTED_REDIS_PIDFILE=""

redis_answers() {
  # Plain bash: no client needed to ask Redis for a PONG.
  (exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" && printf 'PING\r\n' >&3 && IFS= read -r -t 2 line <&3 && [[ $line == +PONG* ]]) 2>/dev/null
}

# Says which Redis the run uses; starts a redis-server when none answers (stop_started_redis stops it).
ensure_redis() {
  if [ -n "${REDIS_CLUSTER_NODES:-}" ]; then echo "redis: using the Redis Cluster at $REDIS_CLUSTER_NODES (REDIS_CLUSTER_NODES)"; return; fi
  if redis_answers; then echo "redis: using the Redis already answering at $REDIS_HOST:$REDIS_PORT (REDIS_URL); it is left running"; return; fi
  if ! command -v redis-server >/dev/null; then
    echo "redis: nothing answers at $REDIS_HOST:$REDIS_PORT and redis-server is not installed (apt-get install redis-server, or set REDIS_URL)" >&2
    exit 1
  fi
  local dir; dir="$(mktemp -d "${TMPDIR:-/tmp}/mlq-redis.XXXXXX")"
  STARTED_REDIS_PIDFILE="$dir/redis.pid"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$dir" --pidfile "$STARTED_REDIS_PIDFILE" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do
    if redis_answers; then
      echo "redis: started redis-server on 127.0.0.1:$REDIS_PORT (pid $(cat "$STARTED_REDIS_PIDFILE"), log $dir/redis.log); $1"
      return
    fi
    sleep 0.1
  done
  echo "redis: started but not answering (log $dir/redis.log)" >&2; exit 1
}

# Stops the redis-server ensure_redis started, if it did.
stop_started_redis() {
  [ -n "$STARTED_REDIS_PIDFILE" ] && [ -f "$STARTED_REDIS_PIDFILE" ] || return 0
  local pid; pid="$(cat "$STARTED_REDIS_PIDFILE")"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "redis: stopped the redis-server this run started (pid $pid)"
}

# The project runs and is tested on Node 24 (the current LTS). Where this machine's node is older,
# bring Node 24 from the npm registry's `node` package (it ships the runtime for this platform) into
# .cache/node24, and put it first on PATH for everything these scripts start.
NODE_MAJOR=24
ensure_node() {
  local have
  have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if (( have >= NODE_MAJOR )); then return; fi
  local dir="$PWD/.cache/node$NODE_MAJOR"
  if [ ! -x "$dir/node_modules/node/bin/node" ]; then
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$dir" "node@$NODE_MAJOR" >/dev/null
  fi
  export PATH="$dir/node_modules/node/bin:$PATH"
  echo "node: using $(node --version) from the npm registry's node package ($( ((have > 0)) && echo "this machine has v$have" || echo "none on this machine"))"
}

PNPM=(pnpm)
ensure_pnpm() {
  if command -v pnpm >/dev/null && [[ "$(pnpm --version 2>/dev/null)" == 10.* ]]; then return; fi
  # corepack is not always usable; npx fetches pnpm 10 from the npm registry.
  PNPM=(npx --yes pnpm@10)
  "${PNPM[@]}" --version >/dev/null
}

install_deps() {
  ensure_node
  ensure_pnpm
  "${PNPM[@]}" install --frozen-lockfile --reporter=append-only 2>&1 | tail -n 5
}

# The console's browser tests drive Debian's chromium through playwright-core (which downloads no browser).
ensure_chromium() {
  local bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
  if [ -x "$bin" ]; then echo "chromium: $bin"; return; fi
  echo "chromium: $bin is missing; installing Debian's chromium"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
  [ -x "$bin" ] || { echo "chromium: still no $bin after apt-get install" >&2; exit 1; }
}

# The container-signal tests (apps/*/test/container-signal.e2e.test.ts) run the images' own command
# lines, which start with Debian's tini (the images' ENTRYPOINT, /usr/bin/tini -g --).
ensure_tini() {
  if [ -x /usr/bin/tini ]; then echo "tini: /usr/bin/tini"; return; fi
  echo "tini: /usr/bin/tini is missing; installing Debian's tini (the images' ENTRYPOINT)"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends tini >/dev/null
  [ -x /usr/bin/tini ] || { echo "tini: still no /usr/bin/tini after apt-get install" >&2; exit 1; }
}

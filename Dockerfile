# The API and the CPU workers: one image, two targets (`api`, `worker`); docker/worker-gpu.Dockerfile
# is the GPU worker. Node runs the TypeScript sources as they are (type stripping; every package is
# erasable syntax, see tsconfig.base.json): no compile step to drift from the sources.
#
# Stages: `manifests` (the workspace's package.json files and the lockfile); `prod-deps` (production
# dependencies only); `console` (the web console's static build, which needs its dev dependencies);
# `runtime` takes prod-deps' node_modules, the sources and the console's dist/; `api` and `worker`
# differ only in their command and health check.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS manifests
RUN npm install -g pnpm@10.34.9
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/console/package.json apps/console/
COPY packages/contract/package.json packages/contract/
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/queues/package.json packages/queues/
COPY packages/sdk/package.json packages/sdk/
COPY bench/package.json bench/

FROM manifests AS prod-deps
# The console's postinstall builds nothing here: its sources are not in this stage.
RUN pnpm install --frozen-lockfile --prod

FROM manifests AS console
RUN pnpm install --frozen-lockfile --filter @mlq/console...
COPY tsconfig.base.json ./
COPY packages/contract packages/contract
COPY packages/sdk packages/sdk
COPY apps/console apps/console
RUN pnpm --filter @mlq/console build

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=prod-deps /app ./
COPY packages packages
COPY apps/api apps/api
COPY apps/worker apps/worker
# The web console (apps/console) is static files the API serves at /ui.
COPY --from=console /app/apps/console/dist apps/console/dist
# `mlq`, the CLI (packages/sdk/bin/mlq.js), on PATH. Artifacts and data live on a volume shared by
# every container, all running as `node` (uid 1000, as in docker/worker-gpu.Dockerfile), or use
# ARTIFACT_STORE=s3://...; /app/.data holds a worker's local cache (WORKER_CACHE_DIR).
RUN ln -s /app/packages/sdk/bin/mlq.js /usr/local/bin/mlq \
  && mkdir -p /data /app/.data && chown node:node /data /app/.data
ENV ARTIFACT_STORE=file:///data/artifacts DATA_ROOTS=/data
VOLUME ["/data"]
USER node
# node is tini's child, not a pnpm script's: `docker stop`'s SIGTERM reaches it. -g sends it to node's
# whole process group, so a worker's sandboxed job processes hear it too, as with Ctrl+C in a terminal
# (they finish handing their job back, then exit). apps/worker/test/container-signal.e2e.test.ts runs
# exactly these command lines.
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]

FROM runtime AS api
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# 1 MiB semi-spaces (V8's young generation; Node 24 lets it grow to 64 MiB, kept after start-up): a
# stream's chunk buffers are freed when a scavenge collects them, and frequent scavenges keep the API
# near its working set. bench/upload.ts runs this command line: a 200 MB upload peaks at ~150 MB (file
# store; ~235 MB without the flag) and 190-206 MB (S3, whose 5 MiB parts are the garbage).
CMD ["node", "--max-semi-space-size=1", "apps/api/src/main.ts"]

FROM runtime AS worker
# SIGTERM lets the worker checkpoint its job and hand it back; compose waits 35 s before SIGKILL.
STOPSIGNAL SIGTERM
# Healthy while this container's worker writes its heartbeat to Redis (apps/worker/src/healthcheck.ts).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "apps/worker/src/healthcheck.ts"]
CMD ["node", "apps/worker/src/main.ts"]

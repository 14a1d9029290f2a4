# One image for the API and CPU workers (targets `api` and `worker`); docker/worker-gpu.Dockerfile
# adds CUDA + tfjs-node-gpu for GPU workers. Sources run with tsx: no build step to drift from.
FROM node:24-bookworm-slim AS base
RUN npm install -g pnpm@10 && apt-get update && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
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
RUN pnpm install --frozen-lockfile --prod=false
COPY tsconfig.base.json ./
COPY apps apps
COPY packages packages
# The web console (apps/console) is static files the API serves at /ui; the install above skipped
# building it because its sources were not copied yet.
RUN pnpm --filter @mlq/console build
# Artifacts and data live on a volume shared by every container (or use ARTIFACT_STORE=s3://...).
RUN mkdir -p /data && chown node:node /data
ENV ARTIFACT_STORE=file:///data/artifacts DATA_ROOTS=/data
VOLUME ["/data"]
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]

FROM base AS api
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["pnpm", "start:api"]

FROM base AS worker
# SIGTERM lets the worker checkpoint its job and hand it back; compose waits 35 s before SIGKILL.
STOPSIGNAL SIGTERM
CMD ["pnpm", "start:worker"]

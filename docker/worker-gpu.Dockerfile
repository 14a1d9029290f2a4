# GPU worker: the same code and command as the Dockerfile's `worker` target, on a CUDA image with
# @tensorflow/tfjs-node-gpu installed. The backend selection (TFJS_BACKEND=auto) finds tfjs-node-gpu
# and uses it; no code change. tfjs-node-gpu 4.22 loads libtensorflow 2.9.1, built for CUDA 11.2 and
# cuDNN 8.1. Build from the repo root: docker build -f docker/worker-gpu.Dockerfile .
ARG NODE_IMAGE=node:24.21.0-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

FROM ${NODE_IMAGE} AS node

# CUDA, Node 24 (the official binary: it needs glibc >= 2.28, Ubuntu 20.04 has 2.31), tini, and the
# user `node` with the uid and gid (1000) it has in the other images, so a shared /data volume is
# writable by every container.
FROM ${CUDA_IMAGE} AS cuda-node
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tini \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# Production dependencies plus tfjs-node-gpu, whose install script downloads libtensorflow (and may
# build its binding: hence the compilers, which stay in this stage).
FROM cuda-node AS deps
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && apt-get update && apt-get install -y --no-install-recommends build-essential python3 \
  && rm -rf /var/lib/apt/lists/* && npm install -g pnpm@10.34.9
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
# tfjs-node-gpu is added in the image only (the project never depends on it): first into this stage's
# package.json, lockfile and allowed builds (pnpm add links every dependency, dev ones too: they are
# dropped), then installed with the production dependencies, sharing their one @tensorflow/tfjs-core.
RUN pnpm add -w @tensorflow/tfjs-node-gpu@4.22.0 --lockfile-only --allow-build=@tensorflow/tfjs-node-gpu \
  && rm -rf node_modules apps/*/node_modules packages/*/node_modules bench/node_modules \
  && pnpm install --frozen-lockfile --prod

FROM cuda-node AS worker-gpu
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app ./
COPY packages packages
COPY apps/worker apps/worker
RUN ln -s /app/packages/sdk/bin/mlq.js /usr/local/bin/mlq \
  && mkdir -p /data /app/.data && chown node:node /data /app/.data
ENV ARTIFACT_STORE=file:///data/artifacts DATA_ROOTS=/data TFJS_BACKEND=auto WORKER_QUEUES=fine-tune,tune
VOLUME ["/data"]
USER node
# As the Dockerfile's worker target (see there): tini passes SIGTERM to node's process group.
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "apps/worker/src/healthcheck.ts"]
CMD ["node", "apps/worker/src/main.ts"]

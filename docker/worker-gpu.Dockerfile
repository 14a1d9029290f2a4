# GPU worker: the same code on a CUDA image with @tensorflow/tfjs-node-gpu installed. The backend
# selection (TFJS_BACKEND=auto) finds tfjs-node-gpu and uses it; no code change.
# tfjs-node-gpu 4.22 loads libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1.
FROM nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
# Node 20 from the official image (its binaries need glibc >= 2.28; Ubuntu 20.04 has 2.31).
COPY --from=node:24-bookworm-slim /usr/local/bin/node /usr/local/bin/node
COPY --from=node:24-bookworm-slim /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && apt-get update && apt-get install -y --no-install-recommends ca-certificates tini build-essential python3 \
  && npm install -g pnpm@10 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY packages/contract/package.json packages/contract/
COPY packages/core/package.json packages/core/
COPY packages/engine/package.json packages/engine/
COPY packages/queues/package.json packages/queues/
COPY packages/sdk/package.json packages/sdk/
COPY bench/package.json bench/
RUN pnpm install --frozen-lockfile
# Added to the image only (its install script downloads libtensorflow, which the project never requires).
RUN pnpm add -w @tensorflow/tfjs-node-gpu@4.22.0 --allow-build=@tensorflow/tfjs-node-gpu
COPY tsconfig.base.json ./
COPY apps apps
COPY packages packages
RUN mkdir -p /data
ENV ARTIFACT_STORE=file:///data/artifacts DATA_ROOTS=/data TFJS_BACKEND=auto WORKER_QUEUES=fine-tune,tune
ENTRYPOINT ["/usr/bin/tini", "--"]
STOPSIGNAL SIGTERM
CMD ["pnpm", "start:worker"]

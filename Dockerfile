# ferry server image: `podman build -t ferry .` (or docker build), then
#   podman run -d --name ferry -p 4455:4455 -p 9464:9464 -v ferry-data:/data ferry
# Options go after the image name (they replace CMD), or in a config file:
#   podman run … -v ./ferry.toml:/etc/ferry/ferry.toml:ro ferry --config /etc/ferry/ferry.toml
# NODE_IMAGE: any Debian-based Node ≥ 20 image with a non-root user "node" (uid 1000).
ARG NODE_IMAGE=docker.io/library/node:20-slim

# ── build: compile and bundle, then keep only the runtime dependencies ────────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No lifecycle scripts: `prepare` would build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN node scripts/build.mjs && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ── runtime: Node, the built CLI and its runtime dependencies, nothing else ──────────
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
COPY --from=build /build/dist/bin ./dist/bin
COPY README.md PROTOCOL.md SECURITY.md ./
RUN ln -s /app/dist/bin/cli/main.js /usr/local/bin/ferry \
 && mkdir -p /data /etc/ferry \
 && chown node:node /data
# The store: keep it on a volume so it outlives the container.
VOLUME ["/data"]
USER node
# 4455: the ferry protocol; 9464: Prometheus metrics (GET /metrics).
EXPOSE 4455 9464
# Healthy while the protocol port accepts connections (each probe is one short connection in the log).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const s=require('net').connect(4455,'127.0.0.1');s.setTimeout(4000,()=>process.exit(1));s.on('connect',()=>{s.destroy();process.exit(0)});s.on('error',()=>process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself; ferry then stops accepting, lets
# transfers finish for --grace seconds (5) and exits 0 — give `stop` a longer timeout than that.
ENTRYPOINT ["node", "/app/dist/bin/cli/main.js", "serve"]
CMD ["--host", "0.0.0.0", "--root", "/data", "--metrics-port", "9464"]

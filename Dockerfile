# iaas (Imaging-as-a-Service) container image.
#
#   docker build -t iaas .
#   docker run -p 1337:1337 -v iaas-data:/data iaas
#
# Two stages on node:24-trixie-slim: Node 24 LTS on Debian 13, whose glibc
# (2.41) the current uWebSockets.js build needs. The build stage runs the
# README's own install command, `npm ci`, which builds everything through
# package.json's scripts: `install` makes better-sqlite3's binding and compiles
# the native addon against the npm-shipped libvips (@img/sharp-libvips-*; no
# libvips from apt), and `prepare` compiles the TypeScript into dist/. Dev dependencies are then pruned, and the runtime
# stage takes only what `npm start` needs. test/ops/dockerfile.test.ts keeps
# these commands identical to package.json and the README.
#
# libvips comes from @img/sharp-libvips-linux-x64, an optional dependency of
# iaas installed on x64 (the arm64 one is listed too, but untested), so the
# image is built for linux/amd64 (on other hosts: docker build --platform linux/amd64).

FROM node:24-trixie-slim AS build

# node-gyp needs python3, make and a C++ compiler: for the addon, and for
# better-sqlite3 when no prebuilt binary can be fetched. Nothing else comes from apt.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# node-gyp builds against this image's own Node headers (/usr/local/include/node)
# and never downloads any. iaas' own install step finds them by itself; this is
# for an npm that still runs better-sqlite3's own install script (one that
# ignores package.json's allowScripts).
ENV npm_config_nodedir=/usr/local

COPY . .

# Install and build everything (the README's install command).
RUN npm ci

# Keep only production dependencies; the built addon and dist/ stay.
RUN npm prune --omit=dev \
 && mkdir -p config


FROM node:24-trixie-slim AS runtime

# MALLOC_ARENA_MAX=2 rather than jemalloc: glibc keeps up to 8 malloc arenas
# per core for a process's many threads (render pool threads times libvips
# threads), and libvips' large short-lived pixel buffers fragment them, so RSS
# grows long after the work is done. Two arenas bound that with no extra
# package and no architecture-specific LD_PRELOAD path, and it is one variable
# an operator can override (jemalloc from Debian's libjemalloc2 via LD_PRELOAD
# is the alternative, at the cost of an apt package in this stage).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    PORT=1337 \
    DATA_DIR=/data

WORKDIR /app

# The application is owned by root and read-only for the service user; it
# writes only to DATA_DIR. The addon finds libvips through an $ORIGIN-relative
# rpath (build/Release -> node_modules/@img/sharp-libvips-linux-x64/lib), so
# both keep their places relative to each other.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build/Release/iaas.node ./build/Release/iaas.node
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/config ./config

RUN mkdir -p /data && chown node:node /data

# The official image's unprivileged user (uid 1000).
USER node

VOLUME ["/data"]

EXPOSE 1337

# curl is not in the slim image: Node's own fetch checks /_health.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 1337) + '/_health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The primary drains its workers on SIGTERM (SHUTDOWN_GRACE_MS, 10 s by default):
# give `docker stop` more than that (docker stop -t 15, or stop_grace_period in compose).
STOPSIGNAL SIGTERM

# The cluster: what `npm start` runs.
CMD ["node", "dist/src/main.js"]

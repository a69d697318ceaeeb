# syntax=docker/dockerfile:1
#
# One image for every platform process; docker-compose.yml picks the role through the command:
#   api                      the REST API
#   worker --lane <lane>     the workers of one lane
#   migrate                  apply database migrations to DATABASE_URL
# (`up`, the embedded all-in-one supervisor, is for laptops and is not meant to run in this image.)
#
# Two stages: the build stage compiles the TypeScript to dist/ and prebuilds the workflow bundle
# (`npm run build`, tsconfig.build.json); the runtime stage holds production dependencies, dist/
# and the few files the platform reads that are not code (common/paths.ts checkoutPath). The
# processes run compiled JavaScript: no TypeScript compiler at start, and no webpack run per worker.
# Node 24 is the maintained LTS line the image runs (Node 20 left upstream support in April 2026;
# the project still runs on it, see package.json engines).

FROM node:24-bookworm-slim AS build
WORKDIR /app
# `npm install`, not `npm ci`: the lockfile was made against a registry mirror without the
# non-Linux @swc/core builds, which `npm ci` reports as missing (see scripts/setup.sh).
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY activities ./activities
COPY cli ./cli
COPY common ./common
COPY db ./db
COPY embedded ./embedded
COPY importers ./importers
COPY interpreter ./interpreter
COPY workers ./workers
COPY workflows ./workflows
RUN npm run build

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, at the lockfile's versions, so the layer is cached until package*.json change.
# --omit=dev is safe: everything the compiled code imports is in "dependencies".
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
  && npm cache clean --force

# The compiled platform with its prebuilt bundle, and what it reads from the checkout. Copied as
# root and left read-only for the runtime user.
COPY --from=build /app/dist ./dist
COPY db ./db
COPY api/authoring/graph-page ./api/authoring/graph-page
COPY activities/sandbox/thread.mjs ./activities/sandbox/thread.mjs
ENV WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js

# The official image's unprivileged user (uid 1000).
USER node

ENTRYPOINT ["node", "dist/cli/platform.js"]
CMD ["--help"]

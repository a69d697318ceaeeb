# syntax=docker/dockerfile:1
#
# One image for every platform process; docker-compose.yml picks the role through the command:
#   api                      the REST API
#   worker --lane <lane>     the workers of one lane
#   migrate                  apply database migrations to DATABASE_URL
# (`up`, the embedded all-in-one supervisor, is for laptops and is not meant to run in this image.)
#
# TypeScript runs through tsx (a runtime dependency), so there is no compile step; the only
# build-time work is the workflow bundle, prebuilt once here so workers start in seconds instead of
# running webpack at every start.

FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, at the lockfile's versions, so the layer is cached until package*.json change.
# --omit=dev is safe: tsx, @temporalio/worker (the bundler) and everything the CLI imports are
# in "dependencies". `npm install`, not `npm ci`: the lockfile was made against a registry mirror
# without the non-Linux @swc/core builds, which `npm ci` reports as missing (see scripts/setup.sh).
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
  && npm cache clean --force

# Sources. Copied as root and left read-only for the runtime user.
COPY tsconfig.json ./
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

# Prebuild the workflow bundle; workers load it through WORKFLOW_BUNDLE_PATH.
RUN node --import tsx cli/platform.ts bundle --out /app/workflow-bundle.js
ENV WORKFLOW_BUNDLE_PATH=/app/workflow-bundle.js

# The official image's unprivileged user (uid 1000).
USER node

ENTRYPOINT ["node", "--import", "tsx", "cli/platform.ts"]
CMD ["--help"]

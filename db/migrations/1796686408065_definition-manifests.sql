-- Up Migration
-- Each registered version's manifest (interpreter/manifest.ts): its dependencies, found once at
-- registration, so starting a run pins from it. NULL for versions registered before: the API
-- computes theirs on first read and stores it (api/definitions-store.ts).
ALTER TABLE definitions ADD COLUMN manifest jsonb;

-- Down Migration
ALTER TABLE definitions DROP COLUMN manifest;

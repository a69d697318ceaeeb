-- Up Migration
-- What the activity workers of each lane run, as they last reported it at start: one row per lane
-- and activity family (task queue), replaced by every worker that starts. The API checks a
-- definition's skills, integrations and model calls against it at registration, so a name the API
-- knows but the lane's workers lack is refused then, not discovered mid-run.
CREATE TABLE worker_catalog (
  lane        text        NOT NULL,
  family      text        NOT NULL,
  -- name -> sha256 of the canonical JSON Schema of its output (what the API validated against)
  entries     jsonb       NOT NULL,
  identity    text        NOT NULL,
  reported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (lane, family)
);

-- Down Migration
DROP TABLE worker_catalog;

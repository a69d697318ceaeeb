-- Up Migration
-- Registered workflow definitions. (tenant, name, version) is immutable once written: the API
-- answers 409 to a different body and treats an identical one as an idempotent re-post.
CREATE TABLE definitions (
  tenant      text        NOT NULL,
  name        text        NOT NULL,
  version     text        NOT NULL,
  body        json        NOT NULL, -- json, not jsonb: the document reads back as it was written
  hash        text        NOT NULL,
  lane        text        NOT NULL,
  description text,
  created_by  text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, name, version)
);

CREATE INDEX definitions_by_name ON definitions (tenant, name, created_at DESC);

-- Down Migration
DROP TABLE definitions;

-- Up Migration
-- Seed 003 §5, the promotion gate: a definition's production alias (the version runs without a
-- version start) and every promotion decision, kept as the audit trail (who, when, the measures,
-- the criteria and the reasons). A version is experimental until the alias names it.
CREATE TABLE definition_aliases (
  tenant      text        NOT NULL,
  name        text        NOT NULL,
  alias       text        NOT NULL,
  version     text        NOT NULL,
  updated_by  text        NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, name, alias)
);

CREATE TABLE promotion_decisions (
  id          text        PRIMARY KEY,
  tenant      text        NOT NULL,
  name        text        NOT NULL,
  -- promoted | kept_experimental | rolled_back
  action      text        NOT NULL,
  candidate   text,
  -- production before the decision (NULL: none)
  previous    text,
  -- production after it (NULL: none)
  production  text,
  principal   text        NOT NULL,
  report      jsonb       NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promotion_decisions_by_name ON promotion_decisions (tenant, name, at DESC);

-- Down Migration
DROP TABLE promotion_decisions;
DROP TABLE definition_aliases;

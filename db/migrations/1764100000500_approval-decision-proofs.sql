-- Up Migration
-- Decision proofs (docs/approvals.md, trust model): a decideApproval update that did not come
-- from the API is recorded with its true channel, `update`; and the key that signs decision
-- tokens, when APPROVAL_SIGNING_KEY is unset, lives here, shared by the API and the workers.
ALTER TABLE approval_audit DROP CONSTRAINT approval_audit_via_check;
ALTER TABLE approval_audit ADD CONSTRAINT approval_audit_via_check CHECK (via IN ('api', 'signal', 'update'));

CREATE TABLE platform_secrets (
  name       text        PRIMARY KEY,
  secret     text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE platform_secrets;
ALTER TABLE approval_audit DROP CONSTRAINT approval_audit_via_check;
ALTER TABLE approval_audit ADD CONSTRAINT approval_audit_via_check CHECK (via IN ('api', 'signal'));

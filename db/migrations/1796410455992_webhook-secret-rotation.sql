-- Webhook signing secrets: rotation with an overlap, and encryption at rest (api/webhooks/secret-box.ts).
--
-- `secret` now holds the AES-256-GCM sealed secret (`v1.<key id>.<iv>.<ciphertext>`), not the
-- secret itself. Rows written before this migration still hold plaintext: SQL has no access to
-- the key, so the API seals them when it starts (WebhookStore.sealPlaintextSecrets, one UPDATE per
-- row, idempotent; a row is never both). After a rotation the old secret stays valid until
-- `previous_secret_expires_at`: deliveries carry a signature with each secret until then.
ALTER TABLE webhook_subscriptions
  ADD COLUMN previous_secret            text,
  ADD COLUMN previous_secret_expires_at timestamptz,
  ADD COLUMN secret_rotated_at          timestamptz;

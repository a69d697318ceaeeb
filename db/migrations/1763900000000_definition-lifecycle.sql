-- Up Migration
-- A definition version's lifecycle: `active` (runs may start), `deprecated` (no new runs; running
-- ones finish; schedules move to the newest active version), `retired` (no new runs and no
-- schedules). Versions stay immutable: only the status changes.
ALTER TABLE definitions ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deprecated', 'retired'));
ALTER TABLE definitions ADD COLUMN status_changed_at timestamptz;
ALTER TABLE definitions ADD COLUMN status_changed_by text;

-- Down Migration
ALTER TABLE definitions DROP COLUMN status_changed_by;
ALTER TABLE definitions DROP COLUMN status_changed_at;
ALTER TABLE definitions DROP COLUMN status;

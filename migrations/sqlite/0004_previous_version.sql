-- The version that was active before the last activation: what a rollback
-- activates again. NULL before the first swap, or once that version is
-- deleted.
ALTER TABLE plugins ADD COLUMN previous_version TEXT;

-- Admin review of creator applications: an application can be queued for later review (it stays 'pending', so
-- the one-open-application rule and apply-creator are unchanged; the API shows it as 'queued'), and carries the
-- reviewer's notes or rejection reason. The audit log stays bounded, and the admin dashboard's feeds and daily
-- series read recent rows by time.

ALTER TABLE creator_applications
    ADD COLUMN queued_at        timestamptz,
    ADD COLUMN review_notes     text,
    ADD COLUMN rejection_reason text,
    ADD CONSTRAINT creator_applications_review_notes_length CHECK (char_length(review_notes) <= 2000),
    ADD CONSTRAINT creator_applications_rejection_reason_length CHECK (char_length(rejection_reason) <= 2000);
CREATE INDEX creator_applications_submitted_idx ON creator_applications (submitted_at DESC, id DESC);

-- An admin's client-side notes land here too (lib/admin/audit.py bounds them at 4 KiB; this is the backstop).
ALTER TABLE admin_actions
    ADD CONSTRAINT admin_actions_action_length CHECK (char_length(action) BETWEEN 1 AND 64),
    ADD CONSTRAINT admin_actions_details_size CHECK (octet_length(details::text) <= 16384);
CREATE INDEX admin_actions_created_idx ON admin_actions (created_at DESC, id DESC);

CREATE INDEX users_created_idx ON users (created_at DESC, id DESC);
CREATE INDEX payments_succeeded_created_idx ON payments (created_at) WHERE status = 'succeeded';
CREATE INDEX tips_created_idx ON tips (created_at DESC);
CREATE INDEX token_transactions_created_idx ON token_transactions (created_at);

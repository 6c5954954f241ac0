-- Idempotency-Key records (lib/idempotency): the first successful response to a key, replayed for 24 hours.
-- Written in the same transaction as the request's effects, so a recorded key always means "it happened".

CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint text NOT NULL,                              -- sha256 of method, path and canonical body
    status_code integer NOT NULL,
    response    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

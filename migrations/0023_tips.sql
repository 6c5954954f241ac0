-- Tips: one row per fan -> creator tip; its tokens moved in the ledger entry `ledger_entry_id`.

CREATE TABLE tips (
    id              uuid PRIMARY KEY,
    from_user_id    uuid NOT NULL REFERENCES users (id),
    to_user_id      uuid NOT NULL REFERENCES users (id),
    amount          bigint NOT NULL,
    creator_cut     bigint NOT NULL,
    platform_fee    bigint NOT NULL,
    message         text,
    stream_id       uuid,                               -- streams (0040) is created after this table
    ledger_entry_id uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tips_amount_range CHECK (amount BETWEEN 1 AND 100000),
    CONSTRAINT tips_split CHECK (creator_cut >= 0 AND platform_fee >= 0 AND creator_cut + platform_fee = amount),
    CONSTRAINT tips_not_self CHECK (from_user_id <> to_user_id),
    CONSTRAINT tips_message_length CHECK (char_length(message) <= 500)
);
CREATE INDEX tips_to_user_idx ON tips (to_user_id, created_at DESC);
CREATE INDEX tips_from_user_idx ON tips (from_user_id, created_at DESC);
CREATE INDEX tips_stream_idx ON tips (stream_id) WHERE stream_id IS NOT NULL;

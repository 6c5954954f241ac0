-- QStash deliveries already handled: a job inserts its message id in the transaction doing the work, so a
-- redelivery of a message whose first delivery committed finds the row and does nothing.
CREATE TABLE job_deliveries (
    message_id text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_deliveries_pkey PRIMARY KEY (message_id),
    CONSTRAINT job_deliveries_message_id_not_blank CHECK (message_id <> '')
);

-- For the cleanup cron: rows older than QStash's retry horizon can go.
CREATE INDEX job_deliveries_claimed_at_idx ON job_deliveries (claimed_at);

-- Realtime outbox: Pusher events written in the same transaction as the change they announce, sent after the
-- commit by lib.realtime.flush, and retried by the cleanup cron (lib.realtime.flush_pending) when Pusher was down.

CREATE TABLE realtime_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT realtime_outbox_pkey PRIMARY KEY,
    channel     text        NOT NULL,
    event       text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    sent_at     timestamptz,
    -- Pusher's own limits on names, so a bad row is refused here rather than by Pusher forever.
    CONSTRAINT realtime_outbox_channel_check CHECK (char_length(channel) BETWEEN 1 AND 200),
    CONSTRAINT realtime_outbox_event_check CHECK (char_length(event) BETWEEN 1 AND 200),
    CONSTRAINT realtime_outbox_attempts_check CHECK (attempts >= 0)
);

-- The retry sweep reads only unsent rows, oldest first; sent rows drop out of the index.
CREATE INDEX realtime_outbox_unsent_idx ON realtime_outbox (id) WHERE sent_at IS NULL;

-- purge() deletes by age.
CREATE INDEX realtime_outbox_created_at_idx ON realtime_outbox (created_at);

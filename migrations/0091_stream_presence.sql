-- Stream liveness without heartbeats: the host's presence in the Agora channel (Agora's channel-event webhooks),
-- the host's token (go-live and each renewal lease the stream until the token expires), and audience counts from
-- Agora's audience events and Pusher's subscription webhooks. Tags from go-live for the directories.

ALTER TABLE streams
    -- Agora says the host is in the channel; (host_presence_at, host_presence_seq) orders Agora's events.
    ADD COLUMN host_in_channel   boolean NOT NULL DEFAULT false,
    ADD COLUMN host_presence_at  timestamptz,
    ADD COLUMN host_presence_seq bigint NOT NULL DEFAULT 0,
    -- The host's latest token expires then: with no word from Agora, the stream lives until then.
    ADD COLUMN host_lease_until  timestamptz,
    -- Audience sizes from each source; viewer_count is the largest of them and of the heartbeat count.
    ADD COLUMN agora_audience    integer NOT NULL DEFAULT 0,
    ADD COLUMN pusher_subscribers integer NOT NULL DEFAULT 0,
    ADD COLUMN pusher_count_ms   bigint NOT NULL DEFAULT 0,
    ADD COLUMN tags              text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT streams_source_counts_nonnegative CHECK (agora_audience >= 0 AND pusher_subscribers >= 0),
    ADD CONSTRAINT streams_tags_count CHECK (cardinality(tags) <= 20);

-- Who Agora says is watching (audience role), one row per stream and uid; (event_at, seq) orders the events.
CREATE TABLE stream_audience (
    stream_id uuid NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    uid       bigint NOT NULL,
    present   boolean NOT NULL,
    event_at  timestamptz NOT NULL,
    seq       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, uid)
);
ALTER TABLE stream_audience ENABLE ROW LEVEL SECURITY;
CREATE INDEX stream_audience_present_idx ON stream_audience (stream_id) WHERE present;

-- Live streams: at most one live stream per creator, enforced by the database.

CREATE TABLE streams (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id        uuid NOT NULL REFERENCES users (id),
    channel           text NOT NULL,
    title             text NOT NULL,
    category          text,
    description       text,
    status            text NOT NULL DEFAULT 'live',
    started_at        timestamptz NOT NULL DEFAULT now(),
    ended_at          timestamptz,
    end_reason        text,
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    viewer_count      integer NOT NULL DEFAULT 0,
    peak_viewers      integer NOT NULL DEFAULT 0,
    tips_tokens       bigint NOT NULL DEFAULT 0,
    CONSTRAINT streams_status_check CHECK (status IN ('live', 'ended')),
    CONSTRAINT streams_channel_key UNIQUE (channel),
    CONSTRAINT streams_counts_nonnegative CHECK (viewer_count >= 0 AND peak_viewers >= 0 AND tips_tokens >= 0)
);
CREATE UNIQUE INDEX streams_one_live_per_creator ON streams (creator_id) WHERE status = 'live';
CREATE INDEX streams_live_idx ON streams (viewer_count DESC, started_at DESC) WHERE status = 'live';
CREATE INDEX streams_creator_idx ON streams (creator_id, started_at DESC);

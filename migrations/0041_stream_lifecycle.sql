-- Stream lifecycle: a live stream has no end; an ended one has when and why; the stale sweep reads one index.

ALTER TABLE streams
    ADD CONSTRAINT streams_end_reason_check
        CHECK (end_reason IS NULL OR end_reason IN ('host', 'heartbeat_timeout')),
    ADD CONSTRAINT streams_state_consistent CHECK (
        CASE status
            WHEN 'live' THEN ended_at IS NULL AND end_reason IS NULL
            ELSE ended_at IS NOT NULL AND end_reason IS NOT NULL AND ended_at >= started_at
        END
    ),
    ADD CONSTRAINT streams_title_length CHECK (char_length(title) BETWEEN 1 AND 100),
    ADD CONSTRAINT streams_peak_covers_count CHECK (peak_viewers >= viewer_count);

-- The sweep ("host silent for two minutes") reads live streams by their last host heartbeat, oldest first.
CREATE INDEX streams_live_heartbeat_idx ON streams (last_heartbeat_at) WHERE status = 'live';

-- Calls: one live call per user on either side (fan or creator), and scheduled call requests (/sessions/*).

-- A user is in at most one ringing or active call, whichever side they are on. The partial unique index on
-- call_sessions (creator_id) cannot see across the two columns, so each live call claims one row per participant
-- here (primary key: the user). lib.calls claims both rows with ON CONFLICT DO NOTHING before it inserts the call
-- (a concurrent claim waits for the other transaction, so no race slips through); the triggers below make the
-- database itself refuse a live call inserted without free claims, and release them when the call stops being live.
CREATE TABLE call_live_parties (
    user_id    uuid NOT NULL REFERENCES users (id),
    call_id    uuid NOT NULL,
    CONSTRAINT call_live_parties_pkey PRIMARY KEY (user_id),
    CONSTRAINT call_live_parties_call_fkey FOREIGN KEY (call_id) REFERENCES call_sessions (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED  -- lib claims just before it inserts the call
);
ALTER TABLE call_live_parties ENABLE ROW LEVEL SECURITY;
CREATE INDEX call_live_parties_call_idx ON call_live_parties (call_id);

-- A live call inserted without its claims takes them here; one held by another call is a unique violation.
CREATE FUNCTION call_sessions_claim_parties() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO call_live_parties (user_id, call_id)
    SELECT p.user_id, p.call_id
    FROM (SELECT n.fan_id AS user_id, n.id AS call_id FROM new_calls n WHERE n.state IN ('ringing', 'active')
          UNION ALL
          SELECT n.creator_id, n.id FROM new_calls n WHERE n.state IN ('ringing', 'active')) p
    WHERE NOT EXISTS (SELECT 1 FROM call_live_parties c WHERE c.user_id = p.user_id AND c.call_id = p.call_id);
    RETURN NULL;
END
$$;

-- A call that leaves ringing/active frees both participants (set-based: the billing sweep ends thousands at once).
CREATE FUNCTION call_sessions_release_parties() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
AS $$
BEGIN
    DELETE FROM call_live_parties p
    USING new_calls n
    WHERE p.call_id = n.id AND n.state NOT IN ('ringing', 'active');
    RETURN NULL;
END
$$;

CREATE TRIGGER call_sessions_claim_parties AFTER INSERT ON call_sessions
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION call_sessions_claim_parties();
CREATE TRIGGER call_sessions_release_parties AFTER UPDATE ON call_sessions
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION call_sessions_release_parties();

-- Calls live today keep their participants (a pre-existing double booking keeps its first claim).
INSERT INTO call_live_parties (user_id, call_id)
SELECT user_id, id FROM (
    SELECT fan_id AS user_id, id, created_at FROM call_sessions WHERE state IN ('ringing', 'active')
    UNION ALL
    SELECT creator_id, id, created_at FROM call_sessions WHERE state IN ('ringing', 'active')
) live
ORDER BY created_at
ON CONFLICT ON CONSTRAINT call_live_parties_pkey DO NOTHING;

-- A call booked for a date and time (POST /sessions/request with a date, POST /sessions/create-invite). The callee
-- accepts it; at scheduled_at a QStash message (/api/jobs/ring-scheduled-call, naming `version`) places the call
-- through lib.calls exactly as /calls/request would, and call_id links the two. Rescheduling bumps `version`, so a
-- message for the old time finds another version and does nothing. Instant requests are calls only (no row here).
CREATE TABLE call_requests (
    id               uuid        NOT NULL,
    fan_id           uuid        NOT NULL REFERENCES users (id),
    creator_id       uuid        NOT NULL REFERENCES users (id),
    requested_by     uuid        NOT NULL REFERENCES users (id),
    request_type     text        NOT NULL,
    call_type        text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    scheduled_at     timestamptz NOT NULL,
    scheduled_date   date        NOT NULL,  -- as the requester gave it, in time_zone
    scheduled_time   time        NOT NULL,
    time_zone        text        NOT NULL DEFAULT 'UTC',
    duration_minutes integer     NOT NULL,
    rate_per_minute  integer     NOT NULL,
    message          text,
    reason           text,
    version          integer     NOT NULL DEFAULT 1,
    call_id          uuid        REFERENCES call_sessions (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    accepted_at      timestamptz,
    closed_by        uuid        REFERENCES users (id),
    CONSTRAINT call_requests_pkey PRIMARY KEY (id),
    CONSTRAINT call_requests_call_key UNIQUE (call_id),
    CONSTRAINT call_requests_type_check CHECK (request_type IN ('session_request', 'session_invite')),
    CONSTRAINT call_requests_call_type_check CHECK (call_type IN ('video', 'voice')),
    CONSTRAINT call_requests_status_check
        CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired', 'rung')),
    CONSTRAINT call_requests_rung_has_call CHECK ((status = 'rung') = (call_id IS NOT NULL)),
    CONSTRAINT call_requests_distinct_parties CHECK (fan_id <> creator_id),
    CONSTRAINT call_requests_requester_is_party CHECK (requested_by IN (fan_id, creator_id)),
    CONSTRAINT call_requests_duration_range CHECK (duration_minutes BETWEEN 1 AND 480),
    CONSTRAINT call_requests_rate_positive CHECK (rate_per_minute > 0),
    CONSTRAINT call_requests_version_positive CHECK (version >= 1),
    CONSTRAINT call_requests_message_length CHECK (char_length(message) <= 500),
    CONSTRAINT call_requests_reason_length CHECK (char_length(reason) <= 500),
    CONSTRAINT call_requests_time_zone_length CHECK (char_length(time_zone) BETWEEN 1 AND 64)
);
ALTER TABLE call_requests ENABLE ROW LEVEL SECURITY;

CREATE INDEX call_requests_fan_idx ON call_requests (fan_id, created_at DESC);
CREATE INDEX call_requests_creator_idx ON call_requests (creator_id, created_at DESC);
-- The sweep: accepted requests coming due, pending ones whose time passed unanswered.
CREATE INDEX call_requests_open_due_idx ON call_requests (scheduled_at) WHERE status IN ('pending', 'accepted');
-- A retried booking (the frontend retries without an Idempotency-Key) finds the first instead of a second.
CREATE UNIQUE INDEX call_requests_one_open_per_slot ON call_requests (requested_by, fan_id, creator_id, scheduled_at)
    WHERE status IN ('pending', 'accepted');

-- Paid calls: a stable Agora uid per user, the call state machine's invariants, and what the sweeps read.

-- Agora identifies a member of a channel by a 32-bit unsigned uid; two users with one uid in a channel kick each
-- other out, so it comes from a sequence (unique), never from hashing the user's UUID.
CREATE SEQUENCE users_agora_uid_seq AS bigint MINVALUE 1 MAXVALUE 4294967295 START WITH 100000;
ALTER TABLE users
    ADD COLUMN agora_uid bigint NOT NULL DEFAULT nextval('users_agora_uid_seq'),
    ADD CONSTRAINT users_agora_uid_key UNIQUE (agora_uid),
    ADD CONSTRAINT users_agora_uid_range CHECK (agora_uid BETWEEN 1 AND 4294967295);
ALTER SEQUENCE users_agora_uid_seq OWNED BY users.agora_uid;

ALTER TABLE call_sessions
    ADD CONSTRAINT call_sessions_billing_nonnegative CHECK (last_billed_minute >= 0 AND total_cost >= 0),
    ADD CONSTRAINT call_sessions_end_reason_check CHECK (
        end_reason IS NULL
        OR end_reason IN ('hangup', 'insufficient_funds', 'heartbeat_timeout', 'declined', 'cancelled', 'no_answer')
    ),
    -- An active call has been connected; a finished one has an end time and a reason; a live one has neither.
    ADD CONSTRAINT call_sessions_state_consistent CHECK (
        CASE state
            WHEN 'ringing' THEN connected_at IS NULL AND ended_at IS NULL AND end_reason IS NULL
            WHEN 'active' THEN connected_at IS NOT NULL AND ended_at IS NULL AND end_reason IS NULL
            WHEN 'ended' THEN connected_at IS NOT NULL AND ended_at IS NOT NULL AND end_reason IS NOT NULL
            ELSE connected_at IS NULL AND ended_at IS NOT NULL AND end_reason IS NOT NULL
        END
    ),
    ADD CONSTRAINT call_sessions_initiator_is_party CHECK (initiated_by IN (fan_id, creator_id));

-- The ring sweep (missed after 45 s) reads only ringing calls, oldest deadline first.
CREATE INDEX call_sessions_ringing_expiry_idx ON call_sessions (ring_expires_at) WHERE state = 'ringing';

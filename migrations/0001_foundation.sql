-- Foundation schema: the seed's names (users, token_transactions, payments, call_sessions), typed and constrained.

CREATE TABLE users (
    id                 uuid PRIMARY KEY,                    -- the Supabase user id (JWT sub)
    email              text,
    username           text NOT NULL,
    display_name       text,
    bio                text,
    profile_pic_url    text,
    banner_url         text,
    creator_type       text,
    is_creator         boolean NOT NULL DEFAULT false,
    role               text NOT NULL DEFAULT 'fan',
    token_balance      bigint NOT NULL DEFAULT 0,
    video_price        integer,
    voice_price        integer,
    message_price      integer,
    stream_price       integer,
    show_token_balance boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_role_check CHECK (role IN ('fan', 'creator', 'admin', 'system')),
    CONSTRAINT users_token_balance_nonnegative CHECK (token_balance >= 0),
    CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9_]{3,30}$')
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE INDEX users_creators_idx ON users (created_at DESC, id) WHERE is_creator;

CREATE TABLE token_transactions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id),
    type            text NOT NULL,
    amount          bigint NOT NULL,                       -- signed: credits > 0, debits < 0
    balance_after   bigint NOT NULL,
    counterparty_id uuid REFERENCES users (id),
    reference_type  text,
    reference_id    text,
    idempotency_key text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT token_transactions_amount_nonzero CHECK (amount <> 0),
    CONSTRAINT token_transactions_balance_after_nonnegative CHECK (balance_after >= 0)
);
CREATE UNIQUE INDEX token_transactions_idempotency_key ON token_transactions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX token_transactions_user_created_idx ON token_transactions (user_id, created_at DESC, id DESC);
CREATE INDEX token_transactions_reference_idx ON token_transactions (reference_type, reference_id);

CREATE TABLE payments (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                  uuid NOT NULL REFERENCES users (id),
    stripe_payment_intent_id text NOT NULL,
    tokens                   bigint NOT NULL CHECK (tokens > 0),
    amount_cents             bigint NOT NULL CHECK (amount_cents >= 0),
    currency                 text NOT NULL DEFAULT 'usd',
    status                   text NOT NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_stripe_payment_intent_id_key UNIQUE (stripe_payment_intent_id)
);
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);

CREATE TABLE call_sessions (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fan_id               uuid NOT NULL REFERENCES users (id),
    creator_id           uuid NOT NULL REFERENCES users (id),
    initiated_by         uuid NOT NULL REFERENCES users (id),
    call_type            text NOT NULL,
    state                text NOT NULL DEFAULT 'ringing',
    channel              text NOT NULL,
    rate_per_minute      integer NOT NULL,
    message              text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    ring_expires_at      timestamptz NOT NULL,
    connected_at         timestamptz,
    ended_at             timestamptz,
    end_reason           text,
    ended_by             uuid REFERENCES users (id),
    last_billed_minute   integer NOT NULL DEFAULT 0,
    total_cost           bigint NOT NULL DEFAULT 0,
    fan_last_seen_at     timestamptz,
    creator_last_seen_at timestamptz,
    CONSTRAINT call_sessions_call_type_check CHECK (call_type IN ('video', 'voice')),
    CONSTRAINT call_sessions_state_check
        CHECK (state IN ('ringing', 'active', 'ended', 'declined', 'cancelled', 'missed')),
    CONSTRAINT call_sessions_rate_positive CHECK (rate_per_minute > 0),
    CONSTRAINT call_sessions_distinct_parties CHECK (fan_id <> creator_id),
    CONSTRAINT call_sessions_channel_key UNIQUE (channel)
);
-- The seed's hot number (active sessions) reads only this small partial index.
CREATE INDEX call_sessions_live_idx ON call_sessions (state, connected_at) WHERE state IN ('ringing', 'active');
-- A creator is in at most one ringing or active call.
CREATE UNIQUE INDEX call_sessions_one_live_per_creator ON call_sessions (creator_id)
    WHERE state IN ('ringing', 'active');
CREATE INDEX call_sessions_fan_idx ON call_sessions (fan_id, created_at DESC);
CREATE INDEX call_sessions_creator_idx ON call_sessions (creator_id, created_at DESC);

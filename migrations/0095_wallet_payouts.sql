-- Wallet and payouts as the frontend calls them: gift purchases, key-less purchase retries, payout intents and
-- creators' payout preferences (lib/payments, lib/payouts).

-- A gift purchase credits payments.user_id (the recipient); buyer_id is who paid (NULL: the user themself).
-- purchase_fingerprint + stripe_idempotency_key let a key-less retry of the same purchase reuse the first
-- attempt's Stripe idempotency key (lib/payments/purchases.py).
ALTER TABLE payments
    ADD COLUMN buyer_id uuid REFERENCES users (id),
    ADD COLUMN purchase_fingerprint text,
    ADD COLUMN stripe_idempotency_key text;
CREATE INDEX payments_purchase_fingerprint_idx ON payments (purchase_fingerprint, created_at DESC)
    WHERE purchase_fingerprint IS NOT NULL;

-- "Release funds for the next payout": a creator's standing request, consumed by the next payout run.
CREATE TABLE payout_intents (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    creator_id   uuid NOT NULL REFERENCES users (id),
    status       text NOT NULL DEFAULT 'pending',
    payout_id    uuid REFERENCES payouts (id),
    last_outcome text,                      -- why the last run left it pending (BELOW_MINIMUM, ...)
    checked_at   timestamptz,               -- the last run that looked at it
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    consumed_at  timestamptz,
    cancelled_at timestamptz,
    CONSTRAINT payout_intents_status_check CHECK (status IN ('pending', 'consumed', 'cancelled')),
    CONSTRAINT payout_intents_consumed_has_payout CHECK ((status = 'consumed') = (payout_id IS NOT NULL))
);
ALTER TABLE payout_intents ENABLE ROW LEVEL SECURITY;
CREATE UNIQUE INDEX payout_intents_one_pending ON payout_intents (creator_id) WHERE status = 'pending';
CREATE INDEX payout_intents_creator_idx ON payout_intents (creator_id, created_at DESC);

-- A creator's payout preferences (defaults apply while there is no row).
CREATE TABLE payout_settings (
    creator_id            uuid PRIMARY KEY REFERENCES users (id),
    payout_enabled        boolean NOT NULL DEFAULT true,    -- false: payout runs skip this creator
    payout_schedule       text NOT NULL DEFAULT 'biweekly', -- shown back only; runs follow the cron
    minimum_payout_cents  bigint NOT NULL DEFAULT 0,        -- the creator's own floor, above the platform's
    auto_withdraw_enabled boolean NOT NULL DEFAULT false,   -- true: every payout run pays out, no intent needed
    reserved_tokens       bigint NOT NULL DEFAULT 0,        -- kept in the balance, never paid out
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payout_settings_schedule_check CHECK (payout_schedule IN ('weekly', 'biweekly', 'monthly')),
    CONSTRAINT payout_settings_minimum_check CHECK (minimum_payout_cents >= 0),
    CONSTRAINT payout_settings_reserved_check CHECK (reserved_tokens >= 0)
);
ALTER TABLE payout_settings ENABLE ROW LEVEL SECURITY;

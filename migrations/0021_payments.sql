-- Stripe payments: what each PaymentIntent is worth in tokens, what its refunds and disputes take back, and how
-- many tokens the ledger currently gives for it (tokens_applied; lib/payments moves it towards the target).

ALTER TABLE payments
    ADD COLUMN tokens_applied bigint NOT NULL DEFAULT 0,
    ADD COLUMN sync_version integer NOT NULL DEFAULT 0,
    ADD COLUMN stripe_checkout_session_id text,
    ADD COLUMN idempotency_key text,
    ADD CONSTRAINT payments_tokens_applied_range CHECK (tokens_applied >= 0 AND tokens_applied <= tokens);

-- Refunds are per charge and cumulative; they may arrive before the intent's success.
CREATE TABLE payment_refunds (
    stripe_charge_id         text PRIMARY KEY,
    stripe_payment_intent_id text NOT NULL,
    amount_cents             bigint NOT NULL CHECK (amount_cents >= 0),
    amount_refunded_cents    bigint NOT NULL CHECK (amount_refunded_cents >= 0),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_refunds_intent_idx ON payment_refunds (stripe_payment_intent_id);

CREATE TABLE payment_disputes (
    stripe_dispute_id        text PRIMARY KEY,
    stripe_payment_intent_id text NOT NULL,
    stripe_charge_id         text,
    amount_cents             bigint NOT NULL CHECK (amount_cents >= 0),
    status                   text NOT NULL,
    closed                   boolean NOT NULL DEFAULT false,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_disputes_intent_idx ON payment_disputes (stripe_payment_intent_id);

-- Every Stripe event id, recorded once, in the same transaction as its effects.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    livemode    boolean NOT NULL DEFAULT false,
    account     text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received_idx ON stripe_events (received_at);

-- Creator payouts: Stripe Connect accounts and payouts of earned tokens (lib/payouts).

-- One connected (Express) account per creator; account.updated webhooks keep the flags current.
CREATE TABLE stripe_accounts (
    user_id           uuid PRIMARY KEY REFERENCES users (id),
    stripe_account_id text NOT NULL,
    payouts_enabled   boolean NOT NULL DEFAULT false,
    charges_enabled   boolean NOT NULL DEFAULT false,
    details_submitted boolean NOT NULL DEFAULT false,
    disabled_reason   text,
    currently_due     text[] NOT NULL DEFAULT '{}',
    stripe_updated_at timestamptz,                     -- `created` of the newest event applied (older ones lose)
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stripe_accounts_stripe_account_id_key UNIQUE (stripe_account_id)
);

-- A payout: tokens taken from the creator's balance (ledger kind 'payout') and sent as one Stripe transfer;
-- tokens_returned of them came back (ledger kind 'payout_reversal') when the transfer failed or was reversed.
CREATE TABLE payouts (
    id                    uuid PRIMARY KEY,
    creator_id            uuid NOT NULL REFERENCES users (id),
    stripe_account_id     text NOT NULL,
    tokens                bigint NOT NULL,
    amount_cents          bigint NOT NULL,
    currency              text NOT NULL DEFAULT 'usd',
    token_usd_value       numeric(12, 6) NOT NULL,
    status                text NOT NULL DEFAULT 'pending',
    tokens_returned       bigint NOT NULL DEFAULT 0,
    amount_reversed_cents bigint NOT NULL DEFAULT 0,
    stripe_transfer_id    text,
    stripe_payout_id      text,
    attempts              integer NOT NULL DEFAULT 0,
    last_error            text,
    failure_code          text,
    failure_message       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    transferred_at        timestamptz,
    paid_at               timestamptz,
    failed_at             timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payouts_status_check CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'reversed')),
    CONSTRAINT payouts_amounts_positive CHECK (tokens > 0 AND amount_cents > 0),
    CONSTRAINT payouts_tokens_returned_range CHECK (tokens_returned >= 0 AND tokens_returned <= tokens),
    CONSTRAINT payouts_reversed_range CHECK (amount_reversed_cents >= 0 AND amount_reversed_cents <= amount_cents),
    -- A payout that gave its tokens back is over; one that kept them is not failed or reversed.
    CONSTRAINT payouts_returned_means_over CHECK (
        (status IN ('failed', 'reversed')) = (tokens_returned = tokens)
    ),
    CONSTRAINT payouts_stripe_transfer_id_key UNIQUE (stripe_transfer_id)
);
CREATE INDEX payouts_creator_idx ON payouts (creator_id, created_at DESC);
-- The retry sweep reads only payouts whose transfer is not confirmed yet.
CREATE INDEX payouts_pending_idx ON payouts (created_at) WHERE status = 'pending';
-- payout.* events are matched to the account's payouts on their way to the bank.
CREATE INDEX payouts_account_open_idx ON payouts (stripe_account_id, created_at) WHERE status IN ('in_transit', 'paid');

-- Earnings provenance: which purchase paid for which creator earning, so a refund or dispute can reverse the
-- creator's earnings from that purchase (lib/payments/clawbacks, lib/ledger/postings).

-- A purchase lot: tokens of one payment still unspent in the buyer's balance. Spending takes lots oldest first
-- (FIFO); `remaining` is a tracking counter, not a ledger (the ledger rows are in token_transactions), and the
-- sum of a user's lots never exceeds their balance (ledger.reconcile checks it).
CREATE TABLE purchase_lots (
    payment_id uuid PRIMARY KEY REFERENCES payments (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    remaining  bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT purchase_lots_remaining_nonnegative CHECK (remaining >= 0)
);
-- Spending reads only the payer's lots with tokens left, oldest first.
CREATE INDEX purchase_lots_open_idx ON purchase_lots (user_id, seq) WHERE remaining > 0;

-- One row per (transfer, purchase lot it spent): written by the ledger in the same statement as the transfer.
-- No foreign keys: this is on the billing sweep's hot path and only the ledger writes it.
CREATE TABLE earning_sources (
    entry_id   uuid NOT NULL,                          -- the transfer's ledger entry
    payment_id uuid NOT NULL,                          -- the purchase whose tokens paid for it
    payee_id   uuid NOT NULL,                          -- the creator who earned them
    tokens     bigint NOT NULL,                        -- gross tokens of this purchase spent by the transfer
    gross      bigint NOT NULL,                        -- the whole transfer (creator cut + platform fee)
    fee        bigint NOT NULL,                        -- its platform fee
    created_at timestamptz NOT NULL DEFAULT now(),     -- when the creator earned them
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT earning_sources_tokens_positive CHECK (tokens > 0 AND tokens <= gross AND fee >= 0 AND fee <= gross),
    CONSTRAINT earning_sources_pkey PRIMARY KEY (payment_id, entry_id)
);

-- What each refund or dispute took back, and from whom: the buyer ('fan': unspent tokens, then debt) or a
-- creator's earning ('earning': the cut from the creator, the fee from the platform account). Signed: a won
-- dispute reinstates with negative rows. Sums per payment equal what the clawbacks moved in the ledger.
CREATE TABLE payment_clawbacks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    payment_id   uuid NOT NULL REFERENCES payments (id),
    sync_version integer NOT NULL,
    party        text NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id),
    entry_id     uuid,                                 -- the reversed transfer (party 'earning')
    earned_at    timestamptz,                          -- when that earning was made (reserve window buckets)
    tokens       bigint NOT NULL,                      -- gross, signed: taken > 0, reinstated < 0
    cut_tokens   bigint NOT NULL,                      -- from/to the creator (or the buyer)
    fee_tokens   bigint NOT NULL,                      -- from/to the platform account
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_clawbacks_party_check CHECK (party IN ('fan', 'earning')),
    CONSTRAINT payment_clawbacks_split CHECK (tokens <> 0 AND tokens = cut_tokens + fee_tokens),
    CONSTRAINT payment_clawbacks_earning_has_entry CHECK ((party = 'earning') = (entry_id IS NOT NULL))
);
CREATE INDEX payment_clawbacks_payment_idx ON payment_clawbacks (payment_id, seq);
CREATE INDEX payment_clawbacks_entry_idx ON payment_clawbacks (entry_id) WHERE entry_id IS NOT NULL;
CREATE INDEX payment_clawbacks_creator_idx ON payment_clawbacks (user_id, earned_at) WHERE party = 'earning';

CREATE TRIGGER earning_sources_append_only
    BEFORE UPDATE OR DELETE ON earning_sources
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER earning_sources_no_truncate
    BEFORE TRUNCATE ON earning_sources
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER payment_clawbacks_append_only
    BEFORE UPDATE OR DELETE ON payment_clawbacks
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER payment_clawbacks_no_truncate
    BEFORE TRUNCATE ON payment_clawbacks
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- Purchases credited before this migration have no lot: their tokens count as already spent with no known
-- recipient, so a later refund of one falls back to the old rule (the buyer's balance, then the buyer's debt).

-- The token ledger: users.token_balance is a cache of the sum of token_transactions.amount; token_debt is a cache
-- of token_debts.amount (tokens clawed back after they were spent). Both ledgers are append-only.

-- Debts: refunds and disputes of tokens already spent; later credits pay them off first (lib/ledger).
ALTER TABLE users
    ADD COLUMN token_debt bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT users_token_debt_nonnegative CHECK (token_debt >= 0);

-- entry_id groups the postings of one ledger operation (a transfer's debit, credit and fee share it);
-- seq orders each user's postings (rows of one user are inserted under that user's row lock, so seq order is
-- the order the balance changed in, which the balance_after chain check relies on).
ALTER TABLE token_transactions
    ADD COLUMN entry_id uuid,
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

CREATE INDEX token_transactions_user_seq_idx ON token_transactions (user_id, seq);

CREATE TABLE token_debts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    entry_id        uuid,
    user_id         uuid NOT NULL REFERENCES users (id),
    type            text NOT NULL,                      -- refund | dispute | adjustment | debt_repayment
    amount          bigint NOT NULL,                    -- signed: incurred > 0, repaid < 0
    debt_after      bigint NOT NULL,
    reference_type  text,
    reference_id    text,
    idempotency_key text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT token_debts_amount_nonzero CHECK (amount <> 0),
    CONSTRAINT token_debts_debt_after_nonnegative CHECK (debt_after >= 0)
);
CREATE UNIQUE INDEX token_debts_idempotency_key ON token_debts (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX token_debts_user_seq_idx ON token_debts (user_id, seq);

-- Append-only: the database itself refuses UPDATE, DELETE and TRUNCATE; corrections are new rows.
CREATE FUNCTION ledger_reject_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (write a correcting row instead)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER token_transactions_append_only
    BEFORE UPDATE OR DELETE ON token_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER token_transactions_no_truncate
    BEFORE TRUNCATE ON token_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER token_debts_append_only
    BEFORE UPDATE OR DELETE ON token_debts
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER token_debts_no_truncate
    BEFORE TRUNCATE ON token_debts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

-- The platform account: receives PLATFORM_FEE_PERCENT of creator earnings. A users row (role 'system') so fees
-- are ordinary postings with a cached balance; lib/ledger re-creates it if it is missing.
INSERT INTO users (id, username, display_name, role, is_creator)
VALUES ('00000000-0000-0000-0000-000000000001', 'digis_platform', 'Digis platform', 'system', false)
ON CONFLICT DO NOTHING;

-- Balances change far more often than anything else on users: leave room on each page so those updates are HOT
-- (no index writes; token_balance and token_debt are in no index), which keeps the billing sweep fast.
ALTER TABLE users SET (fillfactor = 80);

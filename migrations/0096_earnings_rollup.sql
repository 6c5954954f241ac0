-- Creator earnings by UTC day and kind, and what each fan spent with each creator by UTC day: rollups the
-- database keeps exact from the ledger itself (statement triggers on token_transactions and payment_clawbacks,
-- in the same transaction as the postings), so analytics over a creator with millions of ledger rows read a few
-- hundred rows. The ledger stays the one source of truth: lib/analytics.verify recomputes both from it.

-- The analytics bucket of a creator's ledger credit (a transfer's payee leg): the frontend's breakdown names.
CREATE FUNCTION earnings_kind(kind text, meta jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, public
AS
$$
SELECT CASE
           WHEN kind = 'tip' AND meta ->> 'gift_type' IS NOT NULL THEN 'gifts'
           WHEN kind = 'tip' THEN 'tips'
           WHEN kind = 'call' AND meta ->> 'callType' = 'voice' THEN 'voiceCalls'
           WHEN kind = 'call' THEN 'videoCalls'
           WHEN kind = 'class' THEN 'classes'
           ELSE 'other'
       END
$$;

CREATE TABLE earnings_daily (
    creator_id uuid   NOT NULL,
    day        date   NOT NULL,                 -- UTC day of the posting
    kind       text   NOT NULL,                 -- earnings_kind()
    amount     bigint NOT NULL DEFAULT 0,       -- net tokens: creator cuts credited minus earnings reversed
    credits    bigint NOT NULL DEFAULT 0,       -- how many credits (tips, gifts, call minutes, classes)
    PRIMARY KEY (creator_id, day, kind)
);
ALTER TABLE earnings_daily ENABLE ROW LEVEL SECURITY;

CREATE TABLE earnings_fan_daily (
    creator_id uuid   NOT NULL,
    fan_id     uuid   NOT NULL,
    day        date   NOT NULL,                 -- UTC day
    spent      bigint NOT NULL DEFAULT 0,       -- gross tokens the fan paid the creator, less refunds taken back
    PRIMARY KEY (creator_id, fan_id, day)
);
ALTER TABLE earnings_fan_daily ENABLE ROW LEVEL SECURITY;
CREATE INDEX earnings_fan_daily_fan_idx ON earnings_fan_daily (fan_id, creator_id);

-- Transfers: the payee leg (amount > 0, a counterparty, not the platform account) is the creator's earning;
-- the payer leg (amount < 0, a counterparty) is what the fan spent.
CREATE FUNCTION earnings_rollup_ledger() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
AS
$$
BEGIN
    INSERT INTO earnings_daily AS d (creator_id, day, kind, amount, credits)
    SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, earnings_kind(type, metadata), sum(amount), count(*)
    FROM new_rows
    WHERE amount > 0 AND counterparty_id IS NOT NULL
      AND user_id <> '00000000-0000-0000-0000-000000000001'::uuid
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (creator_id, day, kind)
        DO UPDATE SET amount = d.amount + EXCLUDED.amount, credits = d.credits + EXCLUDED.credits;

    INSERT INTO earnings_fan_daily AS f (creator_id, fan_id, day, spent)
    SELECT counterparty_id, user_id, (created_at AT TIME ZONE 'UTC')::date, -sum(amount)
    FROM new_rows
    WHERE amount < 0 AND counterparty_id IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (creator_id, fan_id, day) DO UPDATE SET spent = f.spent + EXCLUDED.spent;
    RETURN NULL;
END;
$$;

CREATE TRIGGER token_transactions_earnings_rollup
    AFTER INSERT ON token_transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION earnings_rollup_ledger();

-- Refunds and disputes of spent tokens (lib/payments/clawbacks): an 'earning' row takes the creator's cut back
-- (or gives it back, signed) on the day it is posted, in the bucket of the earning it reverses; the buyer of the
-- purchase is the fan whose spending it undoes.
CREATE FUNCTION earnings_rollup_clawbacks() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
AS
$$
BEGIN
    INSERT INTO earnings_daily AS d (creator_id, day, kind, amount, credits)
    SELECT c.user_id, (c.created_at AT TIME ZONE 'UTC')::date, coalesce(k.kind, 'other'), -sum(c.cut_tokens), 0
    FROM new_rows c
    LEFT JOIN LATERAL (
        SELECT earnings_kind(t.type, t.metadata) AS kind
        FROM token_transactions t
        WHERE t.user_id = c.user_id AND t.created_at = c.earned_at AND t.entry_id = c.entry_id AND t.amount > 0
        LIMIT 1
    ) k ON true
    WHERE c.party = 'earning'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (creator_id, day, kind) DO UPDATE SET amount = d.amount + EXCLUDED.amount;

    INSERT INTO earnings_fan_daily AS f (creator_id, fan_id, day, spent)
    SELECT c.user_id, p.user_id, (c.created_at AT TIME ZONE 'UTC')::date, -sum(c.tokens)
    FROM new_rows c
    JOIN payments p ON p.id = c.payment_id
    WHERE c.party = 'earning'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (creator_id, fan_id, day) DO UPDATE SET spent = f.spent + EXCLUDED.spent;
    RETURN NULL;
END;
$$;

CREATE TRIGGER payment_clawbacks_earnings_rollup
    AFTER INSERT ON payment_clawbacks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION earnings_rollup_clawbacks();

-- What the ledger holds already.
INSERT INTO earnings_daily (creator_id, day, kind, amount, credits)
SELECT creator_id, day, kind, sum(amount), sum(credits)
FROM (SELECT user_id AS creator_id, (created_at AT TIME ZONE 'UTC')::date AS day,
             earnings_kind(type, metadata) AS kind, amount, 1 AS credits
      FROM token_transactions
      WHERE amount > 0 AND counterparty_id IS NOT NULL
        AND user_id <> '00000000-0000-0000-0000-000000000001'::uuid
      UNION ALL
      SELECT c.user_id, (c.created_at AT TIME ZONE 'UTC')::date,
             coalesce((SELECT earnings_kind(t.type, t.metadata) FROM token_transactions t
                       WHERE t.user_id = c.user_id AND t.created_at = c.earned_at AND t.entry_id = c.entry_id
                         AND t.amount > 0 LIMIT 1), 'other'),
             -c.cut_tokens, 0
      FROM payment_clawbacks c WHERE c.party = 'earning') AS e
GROUP BY 1, 2, 3;

INSERT INTO earnings_fan_daily (creator_id, fan_id, day, spent)
SELECT creator_id, fan_id, day, sum(spent)
FROM (SELECT counterparty_id AS creator_id, user_id AS fan_id, (created_at AT TIME ZONE 'UTC')::date AS day,
             -amount AS spent
      FROM token_transactions WHERE amount < 0 AND counterparty_id IS NOT NULL
      UNION ALL
      SELECT c.user_id, p.user_id, (c.created_at AT TIME ZONE 'UTC')::date, -c.tokens
      FROM payment_clawbacks c JOIN payments p ON p.id = c.payment_id WHERE c.party = 'earning') AS s
GROUP BY 1, 2, 3;

"""The billing sweep records which purchases paid for each call minute and stays set-based doing it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lib import calls, db
from tests.money.conftest import assert_books_balance

T = datetime.fromisoformat("2031-03-01T12:00:00+00:00")


def seed(n: int, first: int) -> None:
    """`n` active calls, minute 1 paid and minute 2 due at T+60s; each fan bought 100 tokens (one purchase lot)."""
    ids = """SELECT i, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid AS fan,
                    ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid AS creator
             FROM generate_series(%(first)s, %(first)s + %(n)s - 1) AS i"""
    p = {"n": n, "first": first, "t": T, "seen": T + timedelta(seconds=30)}
    with db.transaction(statement_timeout_ms=120_000) as conn:
        conn.execute(
            f"""INSERT INTO users (id, username, token_balance, is_creator, role)
                SELECT fan, 'prov_fan_' || i, 100, false, 'fan' FROM ({ids}) x
                UNION ALL SELECT creator, 'prov_creator_' || i, 0, true, 'creator' FROM ({ids}) x""",
            p,
        )
        conn.execute(
            f"""WITH pay AS (
                    INSERT INTO payments (id, user_id, stripe_payment_intent_id, tokens, amount_cents, status,
                                          tokens_applied)
                    SELECT gen_random_uuid(), fan, 'pi_prov_' || i, 100, 1000, 'succeeded', 100 FROM ({ids}) x
                    RETURNING id, user_id
                ), tx AS (
                    INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type,
                                                    reference_id)
                    SELECT user_id, 'purchase', 100, 100, 'payment', id::text FROM pay
                )
                INSERT INTO purchase_lots (payment_id, user_id, remaining) SELECT id, user_id, 100 FROM pay""",
            p,
        )
        conn.execute(
            f"""INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, state, channel,
                                           rate_per_minute, created_at, ring_expires_at, connected_at,
                                           last_billed_minute, total_cost, fan_last_seen_at, creator_last_seen_at)
                SELECT fan, creator, fan, 'video', 'active', 'call-prov-' || i, 10, %(t)s, %(t)s, %(t)s, 1, 0,
                       %(seen)s, %(seen)s
                FROM ({ids}) x""",
            p,
        )


class CountingConn:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: db.Conn) -> None:
        self.conn = conn
        self.statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def sweep(n: int, first: int) -> int:
    seed(n, first)
    with db.transaction() as conn:
        counting = CountingConn(conn)
        result = calls.bill_due_calls(counting, T + timedelta(seconds=61))  # type: ignore[arg-type]
    assert result.minutesBilled == n
    return counting.statements


def test_the_sweep_records_provenance_in_a_constant_number_of_statements(clean: None) -> None:
    assert sweep(3, first=1) == sweep(300, first=100)
    with db.transaction() as conn:
        row = conn.execute(
            """SELECT count(*) AS n, sum(tokens) AS tokens, count(DISTINCT payment_id) AS purchases
               FROM earning_sources"""
        ).fetchone()
        lots = conn.execute("SELECT min(remaining) AS lo, max(remaining) AS hi FROM purchase_lots").fetchone()
    assert row == {"n": 303, "tokens": 3030, "purchases": 303}
    assert lots == {"lo": 90, "hi": 90}
    assert_books_balance()

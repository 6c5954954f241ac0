"""Earnings from the ledger: every period's sums per kind equal the ledger's (UTC days), refunds and disputes
included; the page's shape; who may see what."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lib import analytics, calls, db, ledger
from tests import conftest
from tests.conftest import MakeUser
from tests.money.conftest import charge_refunded, dispute, intent_succeeded
from tests.money.test_webhooks import deliver, new_pi
from tests.support import functions

EARNINGS = "earnings/analytics.py"
BREAKDOWN = (
    "tips",
    "subscriptions",
    "content",
    "messages",
    "recordings",
    "videoCalls",
    "voiceCalls",
    "gifts",
    "vod",
)
PLATFORM = ledger.PLATFORM_USER_ID


def get(file: str, path: str, who: conftest.TestUser) -> Any:
    return functions.client(file).get("/api/v1" + path, headers=who.headers)


def post_leg(
    conn: db.Conn, fan: uuid.UUID, creator: uuid.UUID, amount: int, kind: str, at: datetime, meta: str = "{}"
) -> None:
    """A transfer's two legs written at `at` (the ledger always writes now(); tests need set times). Balances are
    not touched: these tests read earnings, not balances."""
    entry = uuid.uuid4()
    conn.execute(
        """INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, counterparty_id,
                                           reference_type, reference_id, idempotency_key, metadata, created_at)
           VALUES (%(e)s, %(f)s, %(k)s, -%(a)s::bigint, 0, %(c)s, 'test', 'x', %(key)s, %(m)s::jsonb, %(at)s),
                  (%(e)s, %(c)s, %(k)s, %(a)s, 0, %(f)s, 'test', 'x', %(key)s || ':to', %(m)s::jsonb, %(at)s)""",
        {"e": entry, "f": fan, "c": creator, "k": kind, "a": amount, "key": str(entry), "m": meta, "at": at},
    )


def ledger_sums(creator: uuid.UUID, since: date | None, until: date) -> dict[str, int]:
    """The creator's net earnings per kind straight from the ledger: transfer credits, minus earnings reversals
    (their balance part in token_transactions and their debt part in token_debts), plus reinstatements; each
    reversal in the bucket of the transfer it reverses."""
    with db.transaction() as conn:
        rows = conn.execute(
            """
            SELECT t.type, t.metadata, t.amount, t.created_at FROM token_transactions t
            WHERE t.user_id = %(c)s AND t.amount > 0 AND t.counterparty_id IS NOT NULL
            """,
            {"c": creator},
        ).fetchall()
        reversals = conn.execute(
            """
            SELECT r.amount, r.created_at, r.reference_id FROM token_transactions r
            WHERE r.user_id = %(c)s AND r.type IN ('earning_reversal', 'earning_reinstated')
            UNION ALL
            SELECT -d.amount, d.created_at, d.reference_id FROM token_debts d
            WHERE d.user_id = %(c)s AND d.type = 'earning_reversal'
            """,
            {"c": creator},
        ).fetchall()
    out: dict[str, int] = dict.fromkeys(BREAKDOWN, 0)

    def within(at: datetime) -> bool:
        day = at.astimezone(UTC).date()
        return (since is None or day >= since) and day <= until

    for r in rows:
        if not within(r["created_at"]):
            continue
        meta = r["metadata"]
        kind = {
            "tip": "gifts" if meta.get("gift_type") else "tips",
            "call": "voiceCalls" if meta.get("callType") == "voice" else "videoCalls",
        }.get(r["type"], r["type"])
        out[kind] = out.get(kind, 0) + int(r["amount"])
    for r in reversals:  # these tests reverse tips only
        if within(r["created_at"]):
            out["tips"] += int(r["amount"])
    return out


def test_every_period_equals_the_ledger_per_kind_across_utc_day_boundaries(make_user: MakeUser) -> None:
    fan, creator, other = make_user(), make_user(role="creator"), make_user(role="creator")
    now = calls.utcnow()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    edges = [
        midnight,  # first instant of today
        midnight - timedelta(microseconds=1),  # last instant of yesterday
        midnight - timedelta(days=1),
        midnight - timedelta(days=1, microseconds=1),
        midnight - timedelta(days=midnight.weekday()),  # Monday 00:00
        midnight - timedelta(days=midnight.weekday(), microseconds=1),
        midnight.replace(day=1),
        midnight.replace(day=1) - timedelta(microseconds=1),
        midnight.replace(month=1, day=1),
        midnight.replace(month=1, day=1) - timedelta(microseconds=1),
        midnight - timedelta(days=6),  # 7d's first day
        midnight - timedelta(days=29, microseconds=1),
        midnight - timedelta(days=400),
    ]
    kinds = [
        ("tip", "{}", 7),
        ("tip", '{"gift_type": "rose"}', 11),
        ("call", '{"callType": "video"}', 13),
        ("call", '{"callType": "voice"}', 17),
        ("class", "{}", 19),
    ]
    with db.transaction() as conn:
        for i, at in enumerate(edges):
            for j, (kind, meta, amount) in enumerate(kinds):
                post_leg(conn, fan.id, creator.id, amount + i + j, kind, at, meta)
            post_leg(conn, fan.id, other.id, 1000, "tip", at)  # someone else's earnings never count
        conn.execute(
            """INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type, reference_id)
               VALUES (%(c)s, 'purchase', 500, 500, 'test', 'p'), (%(c)s, 'adjustment', 3, 503, 'test', 'a')""",
            {"c": creator.id},
        )  # credits that are not earnings
    # And real postings through the ledger now: a tip, a gift, a call minute.
    with db.transaction() as conn:
        conn.execute("UPDATE users SET token_balance = 1000 WHERE id = %(f)s", {"f": fan.id})
        for kind, meta in (("tip", {}), ("tip", {"gift_type": "rose"}), ("call", {"callType": "voice"})):
            ledger.transfer(
                conn, from_user=fan.id, to_user=creator.id, amount=5, kind=kind, reference_type="t",
                reference_id="t", idempotency_key=str(uuid.uuid4()), metadata=meta,
            )  # fmt: skip
    today = midnight.date()
    for period in ("today", "yesterday", "week", "month", "year", "all", "24h", "7d", "30d", "90d"):
        r = get(EARNINGS, f"/earnings/analytics?period={period}", creator)
        assert r.status_code == 200, r.text
        body = r.json()
        since, until = analytics.window(period, today)
        want = ledger_sums(creator.id, since, until)
        for name in BREAKDOWN:
            assert isinstance(body["breakdown"][name], int)
            assert body["breakdown"][name] == want.get(name, 0), (period, name)
        assert body["breakdown"]["classes"] == want["class"], period
        assert body["summary"]["periodEarnings"] == sum(want.values()), period
        assert sum(d["amount"] for d in body["dailyEarnings"]) == (
            sum(want.values())
            if period != "all"
            else sum(ledger_sums(creator.id, until - timedelta(days=365), until).values())
        )
        assert body["timezone"] == "UTC"
    body = get(EARNINGS, "/earnings/analytics?period=month", creator).json()
    for p in ("today", "yesterday", "week", "month"):
        assert body["periodEarnings"][p] == sum(
            ledger_sums(creator.id, *analytics.window(p, today)).values()
        ), p
    assert body["summary"]["totalEarnings"] == sum(ledger_sums(creator.id, None, today).values())
    days = [d["date"] for d in body["dailyEarnings"]]
    assert days[0] == today.replace(day=1).isoformat() and days[-1] == today.isoformat()
    with db.transaction() as conn:
        assert analytics.verify(conn) == []


def test_refunds_and_disputes_take_earnings_back_in_the_kind_they_came_from(make_user: MakeUser) -> None:
    fan, creator = make_user(), make_user(role="creator")
    pi, pi2 = new_pi(), new_pi()
    assert deliver(intent_succeeded(pi, fan.id, 50, 500)) == 200
    assert deliver(intent_succeeded(pi2, fan.id, 50, 500)) == 200
    with db.transaction() as conn:
        for amount in (30, 40):
            ledger.transfer(
                conn, from_user=fan.id, to_user=creator.id, amount=amount, kind="tip", reference_type="tip",
                reference_id="t", idempotency_key=str(uuid.uuid4()),
            )  # fmt: skip
        # The creator spends part of it, so the reversal is partly debt (token_debts).
        ledger.debit(conn, user_id=creator.id, amount=60, kind="adjustment", reference_type="test",
                     reference_id="spend", idempotency_key=str(uuid.uuid4()))  # fmt: skip
    today = calls.utcnow().date()

    def tips() -> int:
        body = get(EARNINGS, "/earnings/analytics?period=today", creator).json()
        assert body["summary"]["totalEarnings"] == sum(ledger_sums(creator.id, None, today).values())
        assert body["breakdown"]["tips"] == ledger_sums(creator.id, today, today)["tips"]
        return int(body["breakdown"]["tips"])

    assert tips() == 70
    assert deliver(charge_refunded(pi, 250, 500)) == 200  # half of the first purchase
    half = tips()
    assert half < 70
    assert deliver(charge_refunded(pi, 500, 500)) == 200
    after_refund = tips()
    assert after_refund < half
    assert deliver(dispute("charge.dispute.created", "dp_1", pi2)) == 200
    disputed = tips()
    assert disputed <= after_refund
    assert deliver(dispute("charge.dispute.closed", "dp_1", pi2, status="won")) == 200
    assert tips() == after_refund  # a won dispute gives the earnings back
    with db.transaction() as conn:
        assert analytics.verify(conn) == []
        debts = conn.execute(
            "SELECT count(*) AS n FROM token_debts WHERE user_id = %(c)s AND type = 'earning_reversal'",
            {"c": creator.id},
        ).fetchone()
    assert debts is not None and debts["n"] > 0  # the debt path was exercised


def test_wallet_reads_every_field_with_its_type(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    r = get(EARNINGS, "/earnings/analytics?period=month", creator)  # WalletOptimized.js:252
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["summary"]["totalEarnings"], int)
    for p in ("today", "yesterday", "week", "month"):
        assert isinstance(body["periodEarnings"][p], int)
    assert all(isinstance(d["date"], str) and isinstance(d["amount"], int) for d in body["dailyEarnings"])
    assert set(BREAKDOWN) <= set(body["breakdown"])


@pytest.mark.parametrize("period", ["today", "week", "month", "year"])  # WalletOptimized's <select>
def test_each_period_the_wallet_offers_answers(make_user: MakeUser, period: str) -> None:
    creator = make_user(role="creator")
    assert get(EARNINGS, f"/earnings/analytics?period={period}", creator).status_code == 200


def test_access_own_or_admin(make_user: MakeUser) -> None:
    creator, other, admin = make_user(role="creator"), make_user(role="creator"), make_user(role="admin")
    path = f"/earnings/analytics?period=month&creatorId={creator.id}"
    assert get(EARNINGS, path, other).status_code == 403
    assert get(EARNINGS, path, admin).status_code == 200
    assert get(EARNINGS, "/earnings/analytics?period=bogus", creator).status_code == 422
    assert functions.client(EARNINGS).get("/api/v1/earnings/analytics").status_code == 401

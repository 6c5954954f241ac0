"""Creator earnings and analytics, read from the ledger's rollups (migration 0096), in UTC days.

`earnings_daily` and `earnings_fan_daily` are written by database triggers in the same transaction as every
ledger posting they summarise (a transfer's legs; a refund's or dispute's `payment_clawbacks` rows), so they are
exactly the ledger's sums; `verify` recomputes them from `token_transactions`/`payment_clawbacks`.

Windows are whole UTC days ending today: `today`, `yesterday`, `week` (since Monday), `month` (since the 1st),
`year` (since 1 January), `all`, and `24h`/`7d`/`30d`/`90d` = the last 1/7/30/90 UTC days, today included.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from lib.analytics import models as m
from lib.analytics.loyalty import vip_count
from lib.analytics.rollups import check_access, today_utc, window
from lib.analytics.rollups import rows_between as _rows
from lib.analytics.rollups import total as _total
from lib.db import Conn
from lib.users import User

KINDS = tuple(m.Breakdown.model_fields)
ALL_DAYS_SHOWN = 366  # dailyEarnings for `all` lists at most the last year


def _between(rows: list[Any], since: date | None, until: date) -> list[Any]:
    return [r for r in rows if (since is None or r["day"] >= since) and r["day"] <= until]


def _breakdown(rows: list[Any]) -> tuple[m.Breakdown, int]:
    sums: dict[str, int] = defaultdict(int)
    credits = 0
    for r in rows:
        sums[r["kind"] if r["kind"] in KINDS else "other"] += int(r["amount"])
        credits += int(r["credits"])
    return m.Breakdown(**sums), credits


def _daily(rows: list[Any], since: date, until: date) -> list[m.DailyAmount]:
    per_day: dict[date, int] = defaultdict(int)
    for r in rows:
        per_day[r["day"]] += int(r["amount"])
    days = (until - since).days + 1
    return [
        m.DailyAmount(date=(since + timedelta(days=i)).isoformat(), amount=per_day[since + timedelta(days=i)])
        for i in range(days)
    ]


def all_time(conn: Conn, creator_id: UUID) -> int:
    """Net tokens the creator ever earned."""
    row = conn.execute(
        "SELECT coalesce(sum(amount), 0) AS total FROM earnings_daily WHERE creator_id = %(c)s",
        {"c": creator_id},
    ).fetchone()
    return int(row["total"]) if row else 0


# --- the routes ----------------------------------------------------------------------------------------------


def earnings(
    conn: Conn, viewer: User, creator_id: UUID, period: m.Period, now: datetime
) -> m.EarningsAnalytics:
    """GET /earnings/analytics: the period's breakdown and daily series, fixed windows, the all-time total."""
    check_access(conn, viewer, creator_id)
    today = today_utc(now)
    since, until = window(period, today)
    year_start = window("year", today)[0]
    earliest = (
        min(d for d in (since, year_start, today - timedelta(days=7)) if d is not None) if since else None
    )
    rows = _rows(conn, creator_id, earliest, today)
    chosen = _between(rows, since, until)
    breakdown, credits = _breakdown(chosen)
    if since is None:
        first = min((r["day"] for r in rows if r["amount"]), default=today)
        shown_from = max(first, today - timedelta(days=ALL_DAYS_SHOWN - 1))
    else:
        shown_from = since
    fixed = {
        p: _total(_between(rows, *window(p, today))) for p in ("today", "yesterday", "week", "month", "year")
    }
    return m.EarningsAnalytics(
        period=period,
        start=since.isoformat() if since else None,
        end=until.isoformat(),
        summary=m.Summary(
            totalEarnings=all_time(conn, creator_id), periodEarnings=_total(chosen), transactionCount=credits
        ),
        periodEarnings=m.PeriodEarnings(**fixed),
        dailyEarnings=_daily(_between(rows, shown_from, until), shown_from, until),
        breakdown=breakdown,
    )


def _trend(current: float, previous: float) -> float:
    if previous == 0:
        return 100.0 if current > 0 else 0.0
    return round((current - previous) / abs(previous) * 100, 1)


def _change(current: float, previous: float) -> m.Change:
    return m.Change(total=current, previous=previous, trend=_trend(current, previous))


def overview(conn: Conn, viewer: User, creator_id: UUID, period: m.Period, now: datetime) -> m.Overview:
    """GET /analytics/creator/{id}/overview: this window against the one before it, and the dashboard's counters."""
    check_access(conn, viewer, creator_id)
    today = today_utc(now)
    since, until = window(period, today)
    if since is None:  # `all` has no window before it
        since = min((r["day"] for r in _rows(conn, creator_id, None, today)), default=today)
    length = (until - since).days + 1
    before = since - timedelta(days=length)
    month_start = window("month", today)[0]
    rows = _rows(conn, creator_id, min(before, month_start or today), today)
    current, previous = _between(rows, since, until), _between(rows, before, since - timedelta(days=1))
    counts = _credit_counts(current)
    row = conn.execute(
        """SELECT
             (SELECT count(*) FROM follows WHERE creator_id = %(c)s) AS followers,
             (SELECT count(*) FROM follows WHERE creator_id = %(c)s AND created_at < %(t0)s) AS followers_before,
             (SELECT count(DISTINCT fan_id) FROM earnings_fan_daily
               WHERE creator_id = %(c)s AND day BETWEEN %(s)s AND %(u)s AND spent > 0) AS payers,
             (SELECT count(DISTINCT fan_id) FROM earnings_fan_daily
               WHERE creator_id = %(c)s AND day BETWEEN %(b)s AND %(s)s - 1 AND spent > 0) AS payers_before,
             (SELECT avg(extract(epoch FROM ended_at - connected_at)) / 60 FROM call_sessions
               WHERE creator_id = %(c)s AND connected_at >= %(t0)s AND ended_at IS NOT NULL) AS avg_now,
             (SELECT avg(extract(epoch FROM ended_at - connected_at)) / 60 FROM call_sessions
               WHERE creator_id = %(c)s AND connected_at >= %(tb)s AND connected_at < %(t0)s
                 AND ended_at IS NOT NULL) AS avg_before,
             (SELECT count(*) FROM call_requests WHERE creator_id = %(c)s AND status = 'pending'
                 AND requested_by <> %(c)s) AS pending,
             (SELECT count(*) FROM streams WHERE creator_id = %(c)s AND status = 'live') AS live""",
        {
            "c": creator_id,
            "s": since,
            "u": until,
            "b": before,
            "t0": datetime(since.year, since.month, since.day, tzinfo=UTC),
            "tb": datetime(before.year, before.month, before.day, tzinfo=UTC),
        },
    ).fetchone()
    assert row is not None
    followers, followers_before = int(row["followers"]), int(row["followers_before"])
    rate = round(int(row["payers"]) * 100 / followers, 1) if followers else 0.0
    rate_before = round(int(row["payers_before"]) * 100 / followers_before, 1) if followers_before else 0.0
    avg_now = round(float(row["avg_now"] or 0), 1)
    avg_before = round(float(row["avg_before"] or 0), 1)
    today_rows = _between(rows, today, today)
    return m.Overview(
        period=period,
        revenue=_change(_total(current), _total(previous)),
        followers=_change(followers, followers_before),
        engagement=m.Engagement(
            rate=rate,
            previous=rate_before,
            trend=_trend(rate, rate_before),
            videoCalls=counts["videoCalls"],
            voiceCalls=counts["voiceCalls"],
            messages=counts["messages"],
            tips=counts["tips"],
            gifts=counts["gifts"],
        ),
        sessions=m.Sessions(avgDuration=avg_now, previousAvg=avg_before, trend=_trend(avg_now, avg_before)),
        revenueHistory=[m.RevenuePoint(date=d.date, revenue=d.amount) for d in _daily(current, since, until)],
        today=m.Today(earnings=_total(today_rows), tips=_credit_counts(today_rows)["tips"]),
        monthly=m.Monthly(earnings=_total(_between(rows, month_start, today))),
        pending=m.Pending(requests=int(row["pending"])),
        active=m.Active(streams=int(row["live"])),
        unread=m.Unread(messages=0),
        vips=m.Vips(count=vip_count(conn, creator_id)),
    )


def _credit_counts(rows: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["kind"]] += int(r["credits"])
    return counts


def verify(conn: Conn, creator_id: UUID | None = None) -> list[dict[str, Any]]:
    """Rows where a rollup differs from the ledger recomputed (empty when exact); one creator or everyone."""
    return list(
        conn.execute(
            """
            WITH ledger AS (
                SELECT user_id AS creator_id, (created_at AT TIME ZONE 'UTC')::date AS day,
                       earnings_kind(type, metadata) AS kind, amount, 1 AS credits
                FROM token_transactions
                WHERE amount > 0 AND counterparty_id IS NOT NULL
                  AND user_id <> '00000000-0000-0000-0000-000000000001'::uuid
                  AND (%(c)s::uuid IS NULL OR user_id = %(c)s)
                UNION ALL
                SELECT c.user_id, (c.created_at AT TIME ZONE 'UTC')::date,
                       coalesce((SELECT earnings_kind(t.type, t.metadata) FROM token_transactions t
                                 WHERE t.user_id = c.user_id AND t.entry_id = c.entry_id AND t.amount > 0
                                 LIMIT 1), 'other'),
                       -c.cut_tokens, 0
                FROM payment_clawbacks c
                WHERE c.party = 'earning' AND (%(c)s::uuid IS NULL OR c.user_id = %(c)s)
            ), want AS (
                SELECT creator_id, day, kind, sum(amount) AS amount, sum(credits) AS credits
                FROM ledger GROUP BY 1, 2, 3
            ), have AS (
                SELECT creator_id, day, kind, amount, credits FROM earnings_daily
                WHERE %(c)s::uuid IS NULL OR creator_id = %(c)s
            )
            SELECT coalesce(w.creator_id, h.creator_id) AS creator_id, coalesce(w.day, h.day) AS day,
                   coalesce(w.kind, h.kind) AS kind, w.amount AS ledger, h.amount AS rollup
            FROM want w FULL JOIN have h USING (creator_id, day, kind)
            WHERE coalesce(w.amount, 0) <> coalesce(h.amount, 0) OR coalesce(w.credits, 0) <> coalesce(h.credits, 0)
            """,
            {"c": creator_id},
        ).fetchall()
    )

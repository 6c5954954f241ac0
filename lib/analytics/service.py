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
from decimal import Decimal
from typing import Any
from uuid import UUID

from lib import users
from lib.analytics import models as m
from lib.config import get_settings
from lib.db import Conn
from lib.errors import Forbidden, NotFound
from lib.users import User

KINDS = tuple(m.Breakdown.model_fields)
_N_DAYS = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
ALL_DAYS_SHOWN = 366  # dailyEarnings for `all` lists at most the last year
# A fan's loyalty with a creator from the gross tokens they spent there (all time, refunds taken off).
TIERS: tuple[tuple[m.Level, int, str, tuple[str, ...]], ...] = (
    ("diamond", 10_000, "💎", ("Priority call requests", "Exclusive content", "Diamond badge in chat")),
    ("gold", 2_000, "🥇", ("Exclusive content", "Gold badge in chat")),
    ("silver", 500, "🥈", ("Silver badge in chat",)),
    ("bronze", 100, "🥉", ("Bronze badge in chat",)),
)
VIP_LEVELS = ("gold", "diamond")


def today_utc(now: datetime) -> date:
    """The UTC day of `now`."""
    return now.astimezone(UTC).date()


def window(period: m.Period, today: date) -> tuple[date | None, date]:
    """[first day, last day] of a period, both UTC days, inclusive; None = since the beginning."""
    if period in _N_DAYS:
        return today - timedelta(days=_N_DAYS[period] - 1), today
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "week":
        return today - timedelta(days=today.weekday()), today
    if period == "month":
        return today.replace(day=1), today
    if period == "year":
        return today.replace(month=1, day=1), today
    return None, today


def check_access(conn: Conn, viewer: User, creator_id: UUID) -> None:
    """A creator sees their own analytics, an admin anyone's; 403 otherwise, 404 for no such user (admins)."""
    if viewer.id != creator_id and not viewer.is_admin:
        raise Forbidden("You can only see your own analytics", code="NOT_YOUR_ANALYTICS")
    if viewer.id != creator_id and users.get(conn, creator_id) is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")


# --- reads of the rollups ---------------------------------------------------------------------------------------


def _rows(conn: Conn, creator_id: UUID, since: date | None, until: date) -> list[Any]:
    return conn.execute(
        """SELECT day, kind, amount, credits FROM earnings_daily
           WHERE creator_id = %(c)s AND day >= coalesce(%(since)s::date, '-infinity'::date) AND day <= %(until)s""",
        {"c": creator_id, "since": since, "until": until},
    ).fetchall()


def _between(rows: list[Any], since: date | None, until: date) -> list[Any]:
    return [r for r in rows if (since is None or r["day"] >= since) and r["day"] <= until]


def _breakdown(rows: list[Any]) -> tuple[m.Breakdown, int]:
    sums: dict[str, int] = defaultdict(int)
    credits = 0
    for r in rows:
        sums[r["kind"] if r["kind"] in KINDS else "other"] += int(r["amount"])
        credits += int(r["credits"])
    return m.Breakdown(**sums), credits


def _total(rows: list[Any]) -> int:
    return sum(int(r["amount"]) for r in rows)


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
        vips=m.Vips(count=_vip_count(conn, creator_id)),
    )


def _credit_counts(rows: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["kind"]] += int(r["credits"])
    return counts


def tier(tokens: int) -> tuple[m.Level, str, tuple[str, ...]]:
    """(level, emoji, perks) for this many tokens spent with one creator."""
    for level, threshold, emoji, perks in TIERS:
        if tokens >= threshold:
            return level, emoji, perks
    return "none", "", ()


def _vip_count(conn: Conn, creator_id: UUID) -> int:
    gold = next(t for level, t, _, _ in TIERS if level == "gold")
    row = conn.execute(
        """SELECT count(*) AS n FROM (SELECT fan_id FROM earnings_fan_daily WHERE creator_id = %(c)s
                                      GROUP BY fan_id HAVING sum(spent) >= %(g)s) v""",
        {"c": creator_id, "g": gold},
    ).fetchone()
    return int(row["n"]) if row else 0


def top_fans(
    conn: Conn, viewer: User, creator_id: UUID, period: m.Period, now: datetime, limit: int = 10
) -> m.TopFans:
    """GET /analytics/creator/{id}/top-fans: who spent most with the creator in the window (ties: first there)."""
    check_access(conn, viewer, creator_id)
    since, until = window(period, today_utc(now))
    rows = conn.execute(
        """SELECT f.fan_id, f.spent, f.first_day, u.username, u.display_name, u.profile_pic_url,
                  (SELECT coalesce(sum(a.spent), 0) FROM earnings_fan_daily a
                   WHERE a.creator_id = %(c)s AND a.fan_id = f.fan_id) AS lifetime
           FROM (SELECT fan_id, sum(spent) AS spent, min(day) AS first_day FROM earnings_fan_daily
                 WHERE creator_id = %(c)s AND day >= coalesce(%(s)s::date, '-infinity'::date) AND day <= %(u)s
                 GROUP BY fan_id HAVING sum(spent) > 0) f
           JOIN users u ON u.id = f.fan_id
           ORDER BY f.spent DESC, f.first_day, f.fan_id
           LIMIT %(n)s""",
        {"c": creator_id, "s": since, "u": until, "n": limit},
    ).fetchall()
    return m.TopFans(
        period=period,
        fans=[
            m.Fan(
                id=r["fan_id"],
                username=r["username"],
                name=r["display_name"] or r["username"],
                displayName=r["display_name"],
                avatar=r["profile_pic_url"],
                totalSpent=int(r["spent"]),
                tier=tier(int(r["lifetime"]))[0],
                rank=i + 1,
            )
            for i, r in enumerate(rows)
        ],
    )


def badges(conn: Conn, viewer: User, fan_id: UUID, creator_id: UUID | None, now: datetime) -> m.BadgesOut:
    """GET /loyalty/badges/{fanId}?creatorId=: the fan's loyalty level with a creator.

    Without creatorId (the frontend's apiGet drops its params): the viewer's own badge is their level across all
    creators; someone else's is their level with the viewer (a creator looking at a fan in their stream).
    The level is public (it shows in stream chat); the amount only to the fan, that creator or an admin.
    """
    if users.get(conn, fan_id) is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    if creator_id is None and viewer.id != fan_id:
        creator_id = viewer.id
    row = conn.execute(
        """SELECT coalesce(sum(spent), 0) AS spent, min(day) FILTER (WHERE spent > 0) AS first_day
           FROM earnings_fan_daily
           WHERE fan_id = %(f)s AND (%(c)s::uuid IS NULL OR creator_id = %(c)s)""",
        {"f": fan_id, "c": creator_id},
    ).fetchone()
    assert row is not None
    spent = int(row["spent"])
    level, emoji, perks = tier(spent)
    days = (today_utc(now) - row["first_day"]).days + 1 if row["first_day"] else 0
    shown = viewer.is_admin or viewer.id in (fan_id, creator_id)
    usd = (Decimal(spent) * get_settings().token_usd_value).quantize(Decimal("0.01"))
    badge = m.Badges(
        loyalty=m.Loyalty(
            level=level,
            emoji=emoji,
            totalTokens=spent if shown else None,
            totalSpend=float(usd) if shown else None,
            supportDays=days,
            perks=list(perks),
            creatorId=creator_id,
        )
    )
    return m.BadgesOut(badges=badge, data=m.BadgesData(badges=badge))


def kind_stats(
    conn: Conn, creator_id: UUID, kinds: tuple[str, ...], period: m.Period, now: datetime
) -> tuple[int, int]:
    """(credits, net tokens) of these kinds in the window."""
    since, until = window(period, today_utc(now))
    rows = [r for r in _rows(conn, creator_id, since, until) if r["kind"] in kinds]
    return sum(int(r["credits"]) for r in rows), _total(rows)


def tip_stats(conn: Conn, viewer: User, period: m.Period, now: datetime) -> m.TipStatsOut:
    """GET /tips/stats?period=: the viewer's tips received (gifts excluded: /gifts/stats)."""
    count, total = kind_stats(conn, viewer.id, ("tips",), period, now)
    return m.TipStatsOut(
        period=period, stats=m.TipStatsBody(received=m.Received(count=count, total_amount=total))
    )


def gift_stats(conn: Conn, viewer: User, period: m.Period, now: datetime) -> m.GiftStatsOut:
    """GET /gifts/stats?period=: the viewer's gifts received (total_value in tokens)."""
    count, total = kind_stats(conn, viewer.id, ("gifts",), period, now)
    return m.GiftStatsOut(
        period=period, stats=m.GiftStatsBody(received=m.GiftsReceived(count=count, total_value=total))
    )


def subscription_analytics(
    conn: Conn, viewer: User, period: m.Period, now: datetime
) -> m.SubscriptionAnalyticsOut:
    """GET /subscriptions/analytics?period=: subscription credits in the ledger (none until subscriptions exist)."""
    _, in_period = kind_stats(conn, viewer.id, ("subscriptions",), period, now)
    _, lifetime = kind_stats(conn, viewer.id, ("subscriptions",), "all", now)
    return m.SubscriptionAnalyticsOut(
        period=period,
        analytics=m.SubscriptionAnalyticsBody(
            active_subscribers=m.Subscribers(),
            revenue=m.SubscriptionRevenue(lifetime_revenue=lifetime, period_revenue=in_period),
            growth=m.Growth(),
        ),
    )


def poll_stats(period: m.Period) -> m.PollStatsOut:
    """GET /polls/user/stats?period=: polls are not built; zeros."""
    return m.PollStatsOut(period=period, stats=m.PollStatsBody(created=m.PollsCreated()))


# --- the check ----------------------------------------------------------------------------------------------


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

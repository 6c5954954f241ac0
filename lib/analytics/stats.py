"""The per-kind stats the creator analytics page reads (tips, gifts, subscriptions, polls), from the rollups."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from lib.analytics import models as m
from lib.analytics.rollups import rows_between, today_utc, total, window
from lib.db import Conn
from lib.users import User


def kind_stats(
    conn: Conn, creator_id: UUID, kinds: tuple[str, ...], period: m.Period, now: datetime
) -> tuple[int, int]:
    """(credits, net tokens) of these kinds in the window."""
    since, until = window(period, today_utc(now))
    rows = [r for r in rows_between(conn, creator_id, since, until) if r["kind"] in kinds]
    return sum(int(r["credits"]) for r in rows), total(rows)


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

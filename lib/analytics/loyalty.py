"""Loyalty: a fan's tier with a creator from what they spent there, top fans and VIP counts (rollups, UTC)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from lib import users
from lib.analytics import models as m
from lib.analytics.rollups import check_access, today_utc, window
from lib.config import get_settings
from lib.db import Conn
from lib.errors import NotFound
from lib.users import User

# A fan's loyalty with a creator from the gross tokens they spent there (all time, refunds taken off).
TIERS: tuple[tuple[m.Level, int, str, tuple[str, ...]], ...] = (
    ("diamond", 10_000, "💎", ("Priority call requests", "Exclusive content", "Diamond badge in chat")),
    ("gold", 2_000, "🥇", ("Exclusive content", "Gold badge in chat")),
    ("silver", 500, "🥈", ("Silver badge in chat",)),
    ("bronze", 100, "🥉", ("Bronze badge in chat",)),
)
VIP_LEVELS = ("gold", "diamond")


def tier(tokens: int) -> tuple[m.Level, str, tuple[str, ...]]:
    """(level, emoji, perks) for this many tokens spent with one creator."""
    for level, threshold, emoji, perks in TIERS:
        if tokens >= threshold:
            return level, emoji, perks
    return "none", "", ()


def vip_count(conn: Conn, creator_id: UUID) -> int:
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

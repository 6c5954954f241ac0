"""A creator's top supporters: tips and gifts received, summed per sender over a rolling window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from lib import users
from lib.db import Conn
from lib.errors import NotFound
from lib.tips.models import Period, TipStats, TopTipper

MAX_LIMIT = 50
# Rolling windows, so "today" means the same for a viewer in any time zone: the last 24 hours.
WINDOWS: dict[Period, timedelta | None] = {
    "today": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}


def tip_stats(
    conn: Conn, creator_id: uuid.UUID, period: Period, *, limit: int = 10, now: datetime | None = None
) -> TipStats:
    """The creator's top tippers in the period (most tokens first; ties: who got there first), with totals."""
    if users.get(conn, creator_id) is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    window = WINDOWS[period]
    since = (now or datetime.now(UTC)) - window if window is not None else None
    params = {"creator": creator_id, "since": since, "limit": limit}
    rows = conn.execute(
        """WITH per_sender AS (
               SELECT from_user_id, sum(amount) AS total_amount, count(*) AS tip_count, min(created_at) AS first_at
               FROM tips
               WHERE to_user_id = %(creator)s AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
               GROUP BY from_user_id
           )
           SELECT u.id, u.username, u.display_name, u.profile_pic_url, p.total_amount, p.tip_count,
                  -- window sums run before the LIMIT: the totals cover every sender
                  sum(p.total_amount) OVER () AS all_amount, sum(p.tip_count) OVER () AS all_count
           FROM per_sender p JOIN users u ON u.id = p.from_user_id
           ORDER BY p.total_amount DESC, p.first_at, u.id
           LIMIT %(limit)s""",
        params,
    ).fetchall()
    top = [
        TopTipper(
            id=r["id"],
            username=r["username"],
            display_name=r["display_name"],
            profile_pic_url=r["profile_pic_url"],
            total_amount=int(r["total_amount"]),
            tip_count=int(r["tip_count"]),
            rank=n,
        )
        for n, r in enumerate(rows, start=1)
    ]
    return TipStats(
        creatorId=creator_id,
        period=period,
        since=since,
        total_amount=int(rows[0]["all_amount"]) if rows else 0,
        tip_count=int(rows[0]["all_count"]) if rows else 0,
        top_tippers=top,
    )

"""GET /api/analytics/creator/{creator_id}/top-fans?period=: who spent most with the creator (default: this month)."""

from typing import Annotated
from uuid import UUID

from fastapi import Query

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/analytics/creator/{creator_id}/top-fans")
def creator_top_fans(
    creator_id: UUID,
    user: CurrentUser,
    conn: DbConn,
    period: analytics.Period = "month",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> analytics.TopFans:
    """{fans: [{id, username, name, displayName, avatar, totalSpent, tier, rank}]}: gross tokens spent, refunds
    taken off. Own only; admins any."""
    return analytics.top_fans(conn, user, creator_id, period, calls.utcnow(), limit)

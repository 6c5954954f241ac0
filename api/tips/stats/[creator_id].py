"""GET /api/tips/stats/{creator_id}?period=today|week|month|all: a creator's top supporters (TipLeaderboard)."""

from typing import Annotated
from uuid import UUID

from fastapi import Query

from lib import tips
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/tips/stats/{creator_id}")
def tip_stats(
    creator_id: UUID,
    user: CurrentUser,
    conn: DbConn,
    period: tips.Period = "today",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> tips.TipStats:
    """{creatorId, period, since, total_amount, tip_count, top_tippers: [{id, username, display_name,
    profile_pic_url, total_amount, tip_count, rank}]}; rolling windows (today = the last 24 hours)."""
    return tips.tip_stats(conn, creator_id, period, limit=limit)

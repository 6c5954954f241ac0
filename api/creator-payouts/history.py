"""GET /api/creator-payouts/history?page&limit: my payouts, newest first."""

from typing import Annotated

from fastapi import Query

from lib import payouts
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creator-payouts/history", response_model=payouts.PayoutHistory)
def payout_history(
    user: CreatorUser,
    conn: DbConn,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> payouts.PayoutHistory:
    """{payouts: [{net_payout_amount, payout_period_start, ...}], totalPages, page, limit, total, hasMore}."""
    return payouts.payout_history(conn, user.id, page=page, limit=limit)

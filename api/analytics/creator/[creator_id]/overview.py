"""GET /api/analytics/creator/{creator_id}/overview?period=: the creator dashboard's numbers (HybridCreatorDashboard)."""

from uuid import UUID

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/analytics/creator/{creator_id}/overview")
def creator_overview(
    creator_id: UUID, user: CurrentUser, conn: DbConn, period: analytics.Period = "7d"
) -> analytics.Overview:
    """{revenue, followers: {total, previous, trend}, engagement, sessions, revenueHistory, today, monthly, pending,
    active, unread, vips}: this window against the one before it, UTC days. Own only; admins any."""
    return analytics.overview(conn, user, creator_id, period, calls.utcnow())

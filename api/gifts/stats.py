"""GET /api/gifts/stats?period=: the gifts I received in the window (CreatorAnalytics)."""

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/gifts/stats")
def my_gift_stats(
    user: CurrentUser, conn: DbConn, period: analytics.Period = "30d"
) -> analytics.GiftStatsOut:
    """{stats: {received: {count, total_value}}}: total_value in net tokens, UTC days."""
    return analytics.gift_stats(conn, user, period, calls.utcnow())

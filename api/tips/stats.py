"""GET /api/tips/stats?period=: the tips I received in the window (CreatorAnalytics)."""

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/tips/stats")
def my_tip_stats(user: CurrentUser, conn: DbConn, period: analytics.Period = "30d") -> analytics.TipStatsOut:
    """{stats: {received: {count, total_amount}}}: net tokens from tips (gifts are /gifts/stats), UTC days."""
    return analytics.tip_stats(conn, user, period, calls.utcnow())

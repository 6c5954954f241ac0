"""GET /api/earnings/analytics?period=: a creator's earnings from the ledger, in UTC days (WalletOptimized)."""

from uuid import UUID

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/earnings/analytics")
def earnings_analytics(
    user: CurrentUser,
    conn: DbConn,
    period: analytics.Period = "month",
    creatorId: UUID | None = None,
) -> analytics.EarningsAnalytics:
    """{summary.totalEarnings (all time), periodEarnings.{today, yesterday, week, month, year}, dailyEarnings[{date,
    amount}], breakdown.{tips, subscriptions, content, messages, recordings, videoCalls, voiceCalls, gifts, vod,
    classes, other}}: net tokens (credits less refunds taken back). Own only; admins any (`creatorId`)."""
    return analytics.earnings(conn, user, creatorId or user.id, period, calls.utcnow())

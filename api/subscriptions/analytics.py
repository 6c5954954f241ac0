"""GET /api/subscriptions/analytics?period=: my subscription numbers (CreatorAnalytics); zeros until they exist."""

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/subscriptions/analytics")
def my_subscription_analytics(
    user: CurrentUser, conn: DbConn, period: analytics.Period = "30d"
) -> analytics.SubscriptionAnalyticsOut:
    """{analytics: {active_subscribers: {total}, revenue: {monthly_recurring, lifetime_revenue, period_revenue},
    growth: {new_subscribers, renewal_rate}}}: from the ledger's subscription credits."""
    return analytics.subscription_analytics(conn, user, period, calls.utcnow())

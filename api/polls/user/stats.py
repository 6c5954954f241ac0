"""GET /api/polls/user/stats?period=: my poll numbers (CreatorAnalytics); polls are not built, so zeros."""

from lib import analytics
from lib.auth import CurrentUser
from lib.http import create_app

app = create_app()


@app.get("/api/polls/user/stats")
def my_poll_stats(user: CurrentUser, period: analytics.Period = "30d") -> analytics.PollStatsOut:
    """{stats: {created: {count, total_votes_received}}}."""
    return analytics.poll_stats(period)

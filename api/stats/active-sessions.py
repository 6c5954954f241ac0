"""GET /api/stats/active-sessions: the number of calls in progress (no auth; from Redis, else the database)."""

from lib import stats
from lib.http import create_app

app = create_app()


@app.get("/api/stats/active-sessions")
def active_sessions() -> stats.ActiveSessions:
    """{count, asOf, source}."""
    return stats.active_sessions()

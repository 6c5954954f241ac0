"""GET /api/stats/active-sessions: the number of calls in progress (no auth; from Redis, else the database)."""

from lib import stats
from lib.http import EdgeCache, create_app

# The same number for everyone: the edge serves it for a few seconds between invocations.
app = create_app(edge_cache=EdgeCache(s_maxage=5, stale_while_revalidate=10))


@app.get("/api/stats/active-sessions")
def active_sessions() -> stats.ActiveSessions:
    """{count, asOf, source}."""
    return stats.active_sessions()

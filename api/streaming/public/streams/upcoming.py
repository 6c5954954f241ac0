"""GET /api/streaming/public/streams/upcoming (also /api/public/streams/upcoming, /public/streams/upcoming)."""

from lib import streams
from lib.http import EdgeCache, create_app
from lib.streams.models import Upcoming

app = create_app(edge_cache=EdgeCache(s_maxage=30, stale_while_revalidate=60))


@app.get("/api/streaming/public/streams/upcoming")
@app.get("/api/public/streams/upcoming", include_in_schema=False)
@app.get("/public/streams/upcoming", include_in_schema=False)
def upcoming_streams() -> Upcoming:
    """{streams: [{id, creator_id, creator_name, title, description, scheduled_time, ...}], total}: TVPage.js."""
    return streams.upcoming()

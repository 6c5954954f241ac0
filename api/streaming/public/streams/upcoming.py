"""GET /api/streaming/public/streams/upcoming (also /api/public/streams/upcoming, /public/streams/upcoming)."""

from fastapi import Response

from lib import streams
from lib.http import create_app
from lib.streams.models import Upcoming

app = create_app()


@app.get("/api/streaming/public/streams/upcoming")
@app.get("/api/public/streams/upcoming", include_in_schema=False)
@app.get("/public/streams/upcoming", include_in_schema=False)
def upcoming_streams(response: Response) -> Upcoming:
    """{streams: [{id, creator_id, creator_name, title, description, scheduled_time, ...}], total}: TVPage.js."""
    response.headers["Cache-Control"] = "public, max-age=0, s-maxage=30, stale-while-revalidate=60"
    return streams.upcoming()

"""GET /api/streaming/public/streams/live (also /api/public/streams/live, /public/streams/live): live now."""

from typing import Annotated

from fastapi import Query

from lib import streams
from lib.db import DbConn
from lib.http import EdgeCache, create_app
from lib.streams.models import Directory

# No auth, same answer for everyone: the edge may serve it for a few seconds.
app = create_app(edge_cache=EdgeCache(s_maxage=5, stale_while_revalidate=10))


@app.get("/api/streaming/public/streams/live")
@app.get("/api/public/streams/live", include_in_schema=False)
@app.get("/public/streams/live", include_in_schema=False)
def live_streams(
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Directory:
    """{streams: [{id, channel, creator_id, creator_username, ..., viewer_count, started_at}], total, hasMore}."""
    return streams.directory(conn, limit=limit, offset=offset)

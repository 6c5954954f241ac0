"""POST /api/streaming/stream/{stream_ref}/leave: a viewer stops counting now, not when their heartbeat expires."""

from lib import streams
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.streams.models import LeaveAnswer

app = create_app()


@app.post("/api/streaming/stream/{stream_ref}/leave")
def leave(stream_ref: str, user: CurrentUser, conn: DbConn) -> LeaveAnswer:
    """{stream: {id, status, viewerCount}} (also for an ended stream: leaving twice is harmless)."""
    return streams.leave(conn, stream_ref, user)

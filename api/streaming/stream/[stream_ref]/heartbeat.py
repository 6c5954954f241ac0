"""POST /api/streaming/stream/{stream_ref}/heartbeat: the host keeps the stream on air; a viewer keeps counting."""

from lib import streams
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.streams.models import HeartbeatAnswer

app = create_app()


@app.post("/api/streaming/stream/{stream_ref}/heartbeat")
def heartbeat(stream_ref: str, user: CurrentUser, conn: DbConn) -> HeartbeatAnswer:
    """{stream: {id, status, viewerCount}, role, nextHeartbeatIn}; 400 STREAM_NOT_LIVE once it has ended."""
    return streams.heartbeat(conn, stream_ref, user)

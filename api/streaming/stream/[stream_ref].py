"""GET /api/streaming/stream/{stream_ref}: join a live stream (by channel or id) as a viewer."""

from lib import streams
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app
from lib.streams.models import JoinAnswer

app = create_app()


@app.get("/api/streaming/stream/{stream_ref}")
def join_stream(stream_ref: str, user: CurrentUser, conn: DbConn) -> JoinAnswer:
    """{stream: {id, channel, title, creator_id, creator_username}, agoraToken, uid}; 400 STREAM_NOT_LIVE."""
    return streams.join(conn, stream_ref, user)

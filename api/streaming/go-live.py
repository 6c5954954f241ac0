"""POST /api/streaming/go-live: a creator starts a live stream and gets the host's Agora token."""

from lib import streams
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app
from lib.streams.models import GoLive, GoLiveAnswer

app = create_app()


@app.post("/api/streaming/go-live")
def go_live(body: GoLive, creator: CreatorUser, conn: DbConn) -> GoLiveAnswer:
    """{stream: {id, channel, title, status, startedAt}, agora: {...}}; 400 ALREADY_LIVE with streamId."""
    return streams.go_live(conn, creator, body)

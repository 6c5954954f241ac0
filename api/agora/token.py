"""GET /api/agora/token?channel=&role= and POST {channelName, role?}: a media token for my call or a live stream."""

from typing import Annotated, Literal

from fastapi import Query

from lib import agora, calls
from lib.auth import CurrentUser
from lib.calls.models import AgoraToken
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/agora/token")
def agora_token(
    user: CurrentUser,
    conn: DbConn,
    channel: Annotated[str, Query(min_length=1, max_length=64)],
    role: Literal["host", "audience"] | None = None,
) -> AgoraToken:
    """{rtcToken, token, channel, uid, role, appId, expiresAt, expiresIn}; 404 for anyone else's channel."""
    return calls.agora_token(conn, user, channel, role, calls.utcnow())


@app.post("/api/agora/token")
def post_agora_token(body: agora.TokenRequest, user: CurrentUser, conn: DbConn) -> AgoraToken:
    """The same token for a JSON body (EnhancedMobileLiveStream.js sends `{channelName}`)."""
    return calls.agora_token(conn, user, body.channel, body.role, calls.utcnow())

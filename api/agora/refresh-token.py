"""POST /api/agora/refresh-token {channel, role?}: a fresh media token before the current one expires."""

from lib import agora, calls
from lib.auth import CurrentUser
from lib.calls.models import AgoraToken
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/agora/refresh-token")
def refresh_agora_token(body: agora.TokenRequest, user: CurrentUser, conn: DbConn) -> AgoraToken:
    """{token, appId, uid, rtcToken, channel, role, expiresAt, expiresIn}: the rules of GET /agora/token."""
    return calls.agora_token(conn, user, body.channel, body.role, calls.utcnow())

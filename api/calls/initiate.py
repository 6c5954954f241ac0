"""POST /api/calls/initiate: a creator invites a fan to a paid call."""

from lib import calls
from lib.auth import CreatorUser
from lib.calls.models import CallInvite, CallRinging
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/calls/initiate")
def initiate_call(body: CallInvite, user: CreatorUser, conn: DbConn) -> CallRinging:
    """{callId, channel, state: "ringing", expiresAt}; 409 CREATOR_BUSY when I am in another call."""
    return calls.initiate_call(conn, user, body.fanId, body.callType, body.message, calls.utcnow())

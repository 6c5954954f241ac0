"""POST /api/calls/{call_id}/accept: the callee answers; minute 1 is charged and a media token issued."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import JoinInfo
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/calls/{call_id}/accept")
def accept_call(call_id: UUID, user: CurrentUser, conn: DbConn) -> JoinInfo:
    """{callId, channel, appId, token, uid, callType, ratePerMinute, expiresIn}; 402 when the fan can't pay."""
    return calls.accept(conn, user, call_id, calls.utcnow())

"""POST /api/calls/request: a fan asks a creator for a paid call (accepts an Idempotency-Key)."""

from fastapi.responses import JSONResponse

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import CallCreate, CallRinging
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey

app = create_app()


@app.post("/api/calls/request", response_model=CallRinging)
def request_call(body: CallCreate, user: CurrentUser, conn: DbConn, idem: IdempotencyKey) -> JSONResponse:
    """{callId, channel, state: "ringing", expiresAt}; 402 without one minute's tokens; 409 CREATOR_BUSY."""
    return idem.run(
        conn, user.id, lambda: calls.request_call(conn, user, body.creatorId, body.callType, calls.utcnow())
    )

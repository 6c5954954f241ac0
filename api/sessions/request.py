"""POST /api/sessions/request: a fan asks a creator for a call now (it rings), or at a date and time (a booking)."""

from fastapi.responses import JSONResponse

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import SessionRequested, SessionRequestIn
from lib.db import DbConn
from lib.http import create_app
from lib.idempotency import IdempotencyKey

app = create_app()


@app.post("/api/sessions/request", response_model=SessionRequested)
def request_session(
    body: SessionRequestIn, user: CurrentUser, conn: DbConn, idem: IdempotencyKey
) -> JSONResponse:
    """{sessionId, requestId, status, callId, channel, ...}; 402 without one minute's tokens; 409 CREATOR_BUSY."""
    return idem.run(conn, user.id, lambda: sessions.request(conn, user, body, calls.utcnow()))

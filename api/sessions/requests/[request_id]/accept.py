"""POST /api/sessions/requests/{request_id}/accept: accept a booking, or answer a ringing call (minute 1 charged)."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import AcceptIn, RequestAction
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/sessions/requests/{request_id}/accept")
def accept_request(
    request_id: UUID, user: CurrentUser, conn: DbConn, body: AcceptIn | None = None
) -> RequestAction:
    """{success, request, session, call}: `call` is the media join info when a ringing call connected."""
    return sessions.accept(conn, user, request_id, calls.utcnow())

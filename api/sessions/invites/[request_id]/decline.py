"""POST /api/sessions/invites/{request_id}/decline {reason}: the person asked refuses (a booking or a ringing call)."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import ReasonIn, RequestAction
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/sessions/invites/{request_id}/decline")
def decline_request(
    request_id: UUID, user: CurrentUser, conn: DbConn, body: ReasonIn | None = None
) -> RequestAction:
    """{success, request, session}; repeating it is harmless."""
    return sessions.decline(conn, user, request_id, body.reason if body else None, calls.utcnow())

"""POST /api/sessions/requests/{request_id}/cancel {reason}: either side calls it off (a live call is hung up)."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import ReasonIn, RequestAction
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/sessions/requests/{request_id}/cancel")
def cancel_request(
    request_id: UUID, user: CurrentUser, conn: DbConn, body: ReasonIn | None = None
) -> RequestAction:
    """{success, request, session}; repeating it is harmless."""
    return sessions.cancel(conn, user, request_id, body.reason if body else None, calls.utcnow())

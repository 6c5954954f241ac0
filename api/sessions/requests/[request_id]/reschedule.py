"""POST /api/sessions/requests/{request_id}/reschedule {new_date, new_time, message}: move a booking's time."""

from uuid import UUID

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import RequestAction, RescheduleIn
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/sessions/requests/{request_id}/reschedule")
def reschedule_request(
    request_id: UUID, body: RescheduleIn, user: CurrentUser, conn: DbConn
) -> RequestAction:
    """{success, request, session}; an accepted booking rings at the new time only."""
    return sessions.reschedule(conn, user, request_id, body, calls.utcnow())

"""GET /api/sessions/requests?status=: my call requests (instant and booked, incoming and outgoing), newest first."""

from typing import Annotated

from fastapi import Query

from lib import calls
from lib.auth import CurrentUser
from lib.calls import sessions
from lib.calls.session_models import RequestList
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/sessions/requests")
def list_requests(
    user: CurrentUser,
    conn: DbConn,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> RequestList:
    """{requests: [...], total, limit, offset, hasMore}; status pending|accepted|declined|...|all (default all)."""
    return sessions.list_requests(conn, user, status, calls.utcnow(), limit=limit, offset=offset)

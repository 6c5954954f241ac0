"""GET /api/calls/history: my calls, newest first."""

from typing import Annotated

from fastapi import Query

from lib import calls
from lib.auth import CurrentUser
from lib.calls.models import CallHistory
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/calls/history")
def call_history(
    user: CurrentUser,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> CallHistory:
    """{calls, total, limit, offset, hasMore}."""
    return calls.history(conn, user, calls.utcnow(), limit=limit, offset=offset)

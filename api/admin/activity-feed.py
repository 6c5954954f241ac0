"""GET /api/admin/activity-feed: recent signups, purchases, tips and creator applications (admins only)."""

from typing import Annotated, Any

from fastapi import Query

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/activity-feed")
def activity_feed(
    _admin: AdminUser, conn: DbConn, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> dict[str, Any]:
    """{activities: [{id, type, message, timestamp, userId, username, amountTokens?, amountCents?}]}, newest first."""
    return admin.activity_feed(conn, limit=limit)

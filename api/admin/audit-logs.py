"""GET /api/admin/audit-logs: what admins did, newest first (admins only)."""

from typing import Annotated, Any

from fastapi import Query

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/audit-logs")
def audit_logs(
    _admin: AdminUser,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """{logs: [{id, action, user, adminId, targetUserId, target, details, timestamp}], total, limit, offset, hasMore}."""
    return admin.list_logs(conn, limit=limit, offset=offset, action=action)

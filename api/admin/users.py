"""GET /api/admin/users: every user, newest first, with search and filters (admins only)."""

from typing import Annotated, Any

from fastapi import Query

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/users")
def list_users(
    _admin: AdminUser,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    search: Annotated[str | None, Query(max_length=100)] = None,
    role: admin.AssignableRole | None = None,
    is_creator: Annotated[bool | None, Query(alias="isCreator")] = None,
) -> dict[str, Any]:
    """{users: [{id, supabase_id, email, username, display_name, role, is_super_admin, is_creator, creator_type,
    token_balance, created_at, application_status}], total, limit, offset, hasMore}; `system` is not listed."""
    return admin.list_users(conn, limit=limit, offset=offset, search=search, role=role, is_creator=is_creator)

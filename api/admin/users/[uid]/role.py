"""PUT /api/admin/users/{uid}/role: set a user's role; making them a creator approves their application."""

from typing import Any
from uuid import UUID

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.put("/api/admin/users/{uid}/role")
def set_role(uid: UUID, change: admin.RoleChange, me: AdminUser, conn: DbConn) -> dict[str, Any]:
    """{user, application}; 404 unknown user, 403 system account, 400 demoting yourself."""
    return admin.set_role(conn, me, uid, change)

"""PUT /api/admin/users/{uid}/role: make or unmake an admin or a creator (audited); approving a creator approves
their application. Bodies: {role, is_creator?}, {is_super_admin, role: admin|user}, {is_creator, creator_type}."""

from typing import Any
from uuid import UUID

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.put("/api/admin/users/{uid}/role")
def set_role(uid: UUID, change: admin.RoleChange, me: AdminUser, conn: DbConn) -> dict[str, Any]:
    """{user, application, message}; 404 unknown user, 403 system account, 409 CANNOT_DEMOTE_SELF."""
    return admin.set_role(conn, me, uid, change)

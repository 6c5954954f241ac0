"""POST /api/admin/creator-applications/{application_id}/reject {reason}: reject an application; the user's role is unchanged (audited)."""

from typing import Any
from uuid import UUID

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/admin/creator-applications/{application_id}/reject")
def reject_application(
    application_id: UUID, me: AdminUser, conn: DbConn, body: admin.RejectBody | None = None
) -> dict[str, Any]:
    """{application, message}; the same decision again is 200 (replayed: true); 404 APPLICATION_NOT_FOUND,
    409 APPLICATION_DECIDED when it was already decided otherwise."""
    return admin.reject(conn, me, application_id, body or admin.RejectBody())

"""POST /api/admin/creator-applications/{application_id}/approve {reviewNotes}: approve an application: the applicant becomes a creator (audited)."""

from typing import Any
from uuid import UUID

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/admin/creator-applications/{application_id}/approve")
def approve_application(
    application_id: UUID, me: AdminUser, conn: DbConn, body: admin.ApproveBody | None = None
) -> dict[str, Any]:
    """{application, message}; the same decision again is 200 (replayed: true); 404 APPLICATION_NOT_FOUND,
    409 APPLICATION_DECIDED when it was already decided otherwise."""
    return admin.approve(conn, me, application_id, body or admin.ApproveBody())

"""POST /api/admin/creator-applications/{application_id}/queue {notes}: set an application aside for later review (audited)."""

from typing import Any
from uuid import UUID

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/admin/creator-applications/{application_id}/queue")
def queue_application(
    application_id: UUID, me: AdminUser, conn: DbConn, body: admin.QueueBody | None = None
) -> dict[str, Any]:
    """{application, message}; the same decision again is 200 (replayed: true); 404 APPLICATION_NOT_FOUND,
    409 APPLICATION_DECIDED when it was already decided otherwise."""
    return admin.queue(conn, me, application_id, body or admin.QueueBody())

"""POST /api/admin/audit-log {action, details, timestamp}: the dashboard's own note, kept as a `client_note`."""

from typing import Any

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.post("/api/admin/audit-log", status_code=201)
def append_audit_note(note: admin.AuditNote, me: AdminUser, conn: DbConn) -> dict[str, Any]:
    """201 {log: {id, action: "client_note", user, details: {clientAction, details, clientTimestamp}, timestamp}};
    details over 4 KiB of JSON is 422."""
    return admin.append_note(conn, me, note)

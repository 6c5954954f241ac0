"""The admin audit log (`admin_actions`): one row per change an admin makes, written in the same transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, field_validator

from lib.db import Conn
from lib.users import User

# Action types written by the API; a client's own note is stored under CLIENT_NOTE, never under these.
SET_ROLE = "set_role"
APPROVE_APPLICATION = "approve_application"
REJECT_APPLICATION = "reject_application"
QUEUE_APPLICATION = "queue_application"
EXPORT = "export"
CLIENT_NOTE = "client_note"

NOTE_DETAILS_MAX_BYTES = 4096


def record(
    conn: Conn, admin_id: UUID, action: str, *, target_user_id: UUID | None = None, details: dict[str, Any]
) -> UUID:
    """Append one audit row (the caller's transaction commits it with the change it describes); its id."""
    row = conn.execute(
        """INSERT INTO admin_actions (admin_id, action, target_user_id, details)
           VALUES (%(admin)s, %(action)s, %(target)s, %(details)s) RETURNING id""",
        {"admin": admin_id, "action": action, "target": target_user_id, "details": Jsonb(details)},
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row
    return UUID(str(row["id"]))


class AuditNote(BaseModel):
    """POST /admin/audit-log body, as the dashboard sends it: {action, details, timestamp}."""

    model_config = ConfigDict(extra="forbid")

    action: Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    details: dict[str, Any] | None = None
    timestamp: datetime | None = Field(
        default=None, description="the client's clock; the row keeps the server's"
    )

    @field_validator("details")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, default=str).encode()) > NOTE_DETAILS_MAX_BYTES:
            raise ValueError(f"details must be at most {NOTE_DETAILS_MAX_BYTES} bytes of JSON")
        return value


_LOG_SELECT = """SELECT l.id, l.action, l.admin_id, a.username AS admin_username, l.target_user_id,
                        t.username AS target_username, l.details, l.created_at
                 FROM admin_actions l JOIN users a ON a.id = l.admin_id
                 LEFT JOIN users t ON t.id = l.target_user_id"""


def _log_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "action": row["action"],
        "user": row["admin_username"],
        "adminId": row["admin_id"],
        "targetUserId": row["target_user_id"],
        "target": row["target_username"],
        "details": row["details"],
        "timestamp": row["created_at"],
    }


def append_note(conn: Conn, admin: User, note: AuditNote) -> dict[str, Any]:
    """POST /admin/audit-log: the dashboard's own record of what it did, kept apart as a `client_note`."""
    details: dict[str, Any] = {"clientAction": note.action, "details": note.details or {}}
    if note.timestamp is not None:
        details["clientTimestamp"] = note.timestamp.isoformat()
    log_id = record(conn, admin.id, CLIENT_NOTE, details=details)
    row = conn.execute(f"{_LOG_SELECT} WHERE l.id = %(id)s", {"id": log_id}).fetchone()
    assert row is not None  # inserted just above, in this transaction
    return {"log": _log_out(row)}


def list_logs(conn: Conn, *, limit: int, offset: int, action: str | None = None) -> dict[str, Any]:
    """GET /admin/audit-logs: newest first, optionally one action type."""
    params = {"action": action, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"""{_LOG_SELECT} WHERE (%(action)s::text IS NULL OR l.action = %(action)s)
            ORDER BY l.created_at DESC, l.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM admin_actions WHERE (%(action)s::text IS NULL OR action = %(action)s)",
        params,
    ).fetchone()
    count = total["n"] if total else 0
    return {
        "logs": [_log_out(r) for r in rows],
        "total": count,
        "limit": limit,
        "offset": offset,
        "hasMore": offset + len(rows) < count,
    }

"""POST /admin/export/{format}: creator applications (or users) as CSV or JSON, bounded, audited.

CSV cells that a spreadsheet would run as a formula (text starting with = + - @, tab or carriage return) are
prefixed with a single quote; numbers, booleans and dates are written as values.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib.admin import audit
from lib.admin.applications import APPLICATION_SELECT, ApplicationFilters, application_out, filter_sql
from lib.admin.users import like_pattern
from lib.db import Conn
from lib.errors import Unprocessable
from lib.users import User

ExportFormat = Literal["csv", "json"]
# The dashboard sends its selected tab: an application status, 'overview' (every status), or 'moderation'.
ExportType = Literal[
    "overview", "applications", "pending", "queued", "approved", "rejected", "users", "moderation"
]
EXPORT_MAX_ROWS = 5000
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

APPLICATION_COLUMNS: tuple[str, ...] = (
    "id", "userId", "username", "email", "displayName", "status", "category", "bio", "experience",
    "submittedAt", "reviewedAt", "queuedAt", "reviewNotes", "rejectionReason", "totalSpentCents", "sessionCount",
)  # fmt: skip
USER_COLUMNS: tuple[str, ...] = (
    "id", "username", "email", "display_name", "role", "is_super_admin", "is_creator", "creator_type",
    "token_balance", "created_at",
)  # fmt: skip


class ExportRequest(BaseModel):
    """The dashboard's body: `{type, filters, selection}`; a non-empty selection exports exactly those ids."""

    model_config = ConfigDict(extra="forbid")

    type: ExportType = "overview"
    filters: ApplicationFilters = Field(default_factory=ApplicationFilters)
    selection: Annotated[list[UUID], Field(max_length=1000)] = Field(default_factory=list)


@dataclass(frozen=True)
class ExportFile:
    """What the function sends back."""

    content: bytes
    media_type: str
    filename: str
    rows: int
    truncated: bool


def csv_cell(value: Any) -> str:
    """One CSV cell: formula-looking text defused with a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _json_value(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _application_rows(conn: Conn, request: ExportRequest, now: datetime) -> list[dict[str, Any]]:
    filters = request.filters
    if request.type in ("pending", "queued", "approved", "rejected"):
        filters = filters.model_copy(update={"status": request.type})
    where, params = filter_sql(filters, now)
    if request.selection:
        where, params = "a.id = ANY(%(ids)s)", {"ids": request.selection}
    rows = conn.execute(
        f"{APPLICATION_SELECT} WHERE {where} ORDER BY a.submitted_at DESC, a.id DESC LIMIT %(n)s",
        params | {"n": EXPORT_MAX_ROWS + 1},
    ).fetchall()
    out = []
    for row in rows:
        app = application_out(row)
        app["totalSpentCents"] = app["userStats"]["totalSpentCents"]
        app["sessionCount"] = app["userStats"]["sessionCount"]
        out.append({k: app[k] for k in APPLICATION_COLUMNS})
    return out


def _user_rows(conn: Conn, request: ExportRequest) -> list[dict[str, Any]]:
    pattern = like_pattern(request.filters.search)
    rows = conn.execute(
        f"""SELECT {", ".join(USER_COLUMNS).replace("is_super_admin", "(role = 'admin') AS is_super_admin")}
            FROM users WHERE role <> 'system'
              AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s))
              AND (%(p)s::text IS NULL OR username ILIKE %(p)s OR email ILIKE %(p)s OR display_name ILIKE %(p)s)
            ORDER BY created_at DESC, id DESC LIMIT %(n)s""",  # noqa: S608 - fixed text
        {"ids": request.selection or None, "p": pattern, "n": EXPORT_MAX_ROWS + 1},
    ).fetchall()
    return [dict(r) for r in rows]


def export(
    conn: Conn, admin: User, fmt: ExportFormat, request: ExportRequest, *, now: datetime | None = None
) -> ExportFile:
    """Build the file (at most EXPORT_MAX_ROWS rows, newest first) and audit the export."""
    now = now or datetime.now(UTC)
    if request.type == "moderation":
        raise Unprocessable(
            "There is nothing to export for moderation yet",
            code="EXPORT_UNSUPPORTED",
            errors=[{"field": "type", "message": "moderation reports are not kept"}],
        )
    if request.type == "users":
        columns, rows = USER_COLUMNS, _user_rows(conn, request)
    else:
        columns, rows = APPLICATION_COLUMNS, _application_rows(conn, request, now)
    truncated = len(rows) > EXPORT_MAX_ROWS
    rows = rows[:EXPORT_MAX_ROWS]
    kind = "users" if request.type == "users" else "applications"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([csv_cell(row[c]) for c in columns] for row in rows)
        content, media_type = buffer.getvalue().encode(), "text/csv; charset=utf-8"
    else:
        body = {"type": kind, "exportedAt": now.isoformat(), "truncated": truncated, "rows": rows}
        content, media_type = json.dumps(body, default=_json_value).encode(), "application/json"
    audit.record(
        conn,
        admin.id,
        audit.EXPORT,
        details={"format": fmt, "type": request.type, "rows": len(rows), "truncated": truncated,
                 "selection": len(request.selection)},
    )  # fmt: skip
    filename = f"digis-{kind}-{now.strftime('%Y%m%d-%H%M%S')}.{fmt}"
    return ExportFile(content, media_type, filename, len(rows), truncated)

"""Admin: the user list, role changes (approving creators), and the dashboard's numbers.

Admins are users with `role = 'admin'`, set in the database; nothing here can make the caller an admin of
anything they were not already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool

from lib.db import Conn
from lib.errors import BadRequest, Forbidden, NotFound, Unprocessable
from lib.users import User

AssignableRole = Literal["fan", "creator", "admin"]
_ADMIN_USER_COLUMNS = "id, email, username, display_name, role, is_creator, token_balance, created_at"


def list_users(
    conn: Conn,
    *,
    limit: int,
    offset: int,
    search: str | None = None,
    role: str | None = None,
    is_creator: bool | None = None,
) -> dict[str, Any]:
    """GET /admin/users: newest first, filtered by a search over username/email/display name, role, creator."""
    pattern = None
    if search and search.strip():
        escaped = search.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    params = {"pattern": pattern, "role": role, "creator": is_creator, "limit": limit, "offset": offset}
    where = """(%(pattern)s::text IS NULL OR username ILIKE %(pattern)s OR email ILIKE %(pattern)s
                 OR display_name ILIKE %(pattern)s)
               AND (%(role)s::text IS NULL OR role = %(role)s)
               AND (%(creator)s::boolean IS NULL OR is_creator = %(creator)s)"""
    rows = conn.execute(
        f"""SELECT {_ADMIN_USER_COLUMNS},
                   (SELECT a.status FROM creator_applications a WHERE a.user_id = users.id
                    ORDER BY a.submitted_at DESC LIMIT 1) AS application_status
            FROM users WHERE {where}
            ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s""",  # noqa: S608 - fixed text
        params,
    ).fetchall()
    total = conn.execute(f"SELECT count(*) AS n FROM users WHERE {where}", params).fetchone()  # noqa: S608
    count = total["n"] if total else 0
    return {
        "users": rows,
        "total": count,
        "limit": limit,
        "offset": offset,
        "hasMore": offset + len(rows) < count,
    }


class RoleChange(BaseModel):
    """PUT /admin/users/{uid}/role body."""

    model_config = ConfigDict(extra="forbid")

    role: AssignableRole
    is_creator: StrictBool | None = Field(
        default=None, validation_alias=AliasChoices("is_creator", "isCreator")
    )


def set_role(conn: Conn, admin: User, target_id: UUID, change: RoleChange) -> dict[str, Any]:
    """Change a user's role; making someone a creator approves their pending application, 'fan' rejects it."""
    target = conn.execute(
        "SELECT id, role, is_creator FROM users WHERE id = %(id)s FOR UPDATE", {"id": target_id}
    ).fetchone()
    if target is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    if target["role"] == "system":
        raise Forbidden("System accounts cannot be changed", code="SYSTEM_ACCOUNT")
    if target_id == admin.id and change.role != "admin":
        raise BadRequest("Admins cannot remove their own admin role", code="CANNOT_DEMOTE_SELF")
    defaults = {"creator": True, "fan": False, "admin": target["is_creator"]}
    is_creator = defaults[change.role] if change.is_creator is None else change.is_creator
    if (change.role == "creator" and not is_creator) or (change.role == "fan" and is_creator):
        raise Unprocessable(
            f"role {change.role!r} does not go with is_creator={is_creator}",
            errors=[{"field": "is_creator", "message": "contradicts role"}],
        )
    user = conn.execute(
        f"""UPDATE users SET role = %(role)s, is_creator = %(c)s, updated_at = now() WHERE id = %(id)s
            RETURNING {_ADMIN_USER_COLUMNS}""",  # noqa: S608
        {"role": change.role, "c": is_creator, "id": target_id},
    ).fetchone()
    decision = "approved" if is_creator else ("rejected" if change.role == "fan" else None)
    application = None
    if decision:
        application = conn.execute(
            """UPDATE creator_applications SET status = %(s)s, reviewed_at = now(), reviewed_by = %(admin)s
               WHERE user_id = %(id)s AND status = 'pending'
               RETURNING id, status, submitted_at AS "submittedAt", reviewed_at AS "reviewedAt\"""",
            {"s": decision, "admin": admin.id, "id": target_id},
        ).fetchone()
    conn.execute(
        """INSERT INTO admin_actions (admin_id, action, target_user_id, details)
           VALUES (%(admin)s, 'set_role', %(id)s, %(details)s)""",
        {
            "admin": admin.id,
            "id": target_id,
            "details": Jsonb(
                {"from": {"role": target["role"], "is_creator": target["is_creator"]},
                 "to": {"role": change.role, "is_creator": is_creator}}
            ),
        },
    )  # fmt: skip
    return {"user": user, "application": application}


# ---- dashboard numbers -------------------------------------------------------------------------------------

StatSection = Callable[[Conn], dict[str, Any]]


def _people_and_activity(conn: Conn) -> dict[str, Any]:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM users WHERE role <> 'system') AS total_users,
                  (SELECT count(*) FROM users WHERE is_creator AND role <> 'system') AS creators,
                  (SELECT count(*) FROM call_sessions WHERE state = 'active') AS active_sessions,
                  (SELECT count(*) FROM streams WHERE status = 'live') AS live_streams,
                  (SELECT count(*) FROM creator_applications WHERE status = 'pending') AS pending"""
    ).fetchone()
    assert row is not None  # a query of scalar subqueries always returns one row
    return {
        "totalUsers": row["total_users"],
        "activeCreators": row["creators"],
        "activeSessions": row["active_sessions"],
        "liveStreams": row["live_streams"],
        "pendingApplications": row["pending"],
    }


def _revenue(conn: Conn) -> dict[str, Any]:
    # "Today" is the UTC calendar day; a payment counts on the day it was created.
    row = conn.execute(
        """SELECT COALESCE(sum(amount_cents), 0)::bigint AS cents FROM payments
           WHERE status = 'succeeded' AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"""
    ).fetchone()
    return {"revenue": {"todayCents": row["cents"] if row else 0}}


def _payouts(conn: Conn) -> dict[str, Any]:
    from lib import payouts  # imported here: only the stats route needs the payouts package

    return payouts.admin_section(conn)


# Each section adds keys to GET /admin/stats; another domain's numbers are one more function here.
STAT_SECTIONS: list[StatSection] = [_people_and_activity, _revenue, _payouts]


def stats(conn: Conn) -> dict[str, Any]:
    """GET /admin/stats: {totalUsers, activeCreators, activeSessions, liveStreams, revenue: {todayCents},
    payouts: {byStatus, creatorDebt, recent}, ...}."""
    body: dict[str, Any] = {}
    for section in STAT_SECTIONS:
        body.update(section(conn))
    return body

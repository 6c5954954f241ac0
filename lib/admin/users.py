"""The admin user list and role changes: the one place a user's role or creator status is changed by an admin.

`is_super_admin` (the frontend's name) is `role = 'admin'`: there is one admin level. An admin can make and unmake
admins and creators, but never changes the platform's `system` account nor removes their own admin role.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    model_validator,
)

from lib.admin import audit
from lib.db import Conn
from lib.errors import Conflict, Forbidden, NotFound
from lib.users import User

AssignableRole = Literal["fan", "creator", "admin"]
# Every row the admin pages read; `supabase_id` is the id the user page keys its actions on.
ADMIN_USER_COLUMNS = """id, id AS supabase_id, email, username, display_name, role, (role = 'admin') AS is_super_admin,
                        is_creator, creator_type, token_balance, created_at"""


def like_pattern(search: str | None) -> str | None:
    """An ILIKE pattern matching `search` anywhere, its own % _ \\ taken literally; None for a blank search."""
    if not search or not search.strip():
        return None
    escaped = search.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(
    conn: Conn,
    *,
    limit: int,
    offset: int,
    search: str | None = None,
    role: str | None = None,
    is_creator: bool | None = None,
) -> dict[str, Any]:
    """GET /admin/users: newest first, filtered by a search over username/email/display name, role, creator.
    The platform's `system` account is not listed (nothing an admin can do to it)."""
    pattern = like_pattern(search)
    params = {"pattern": pattern, "role": role, "creator": is_creator, "limit": limit, "offset": offset}
    where = """role <> 'system'
               AND (%(pattern)s::text IS NULL OR username ILIKE %(pattern)s OR email ILIKE %(pattern)s
                    OR display_name ILIKE %(pattern)s)
               AND (%(role)s::text IS NULL OR role = %(role)s)
               AND (%(creator)s::boolean IS NULL OR is_creator = %(creator)s)"""
    rows = conn.execute(
        f"""SELECT {ADMIN_USER_COLUMNS},
                   (SELECT CASE WHEN a.status = 'pending' AND a.queued_at IS NOT NULL THEN 'queued' ELSE a.status END
                    FROM creator_applications a WHERE a.user_id = users.id
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
    """PUT /admin/users/{uid}/role body, in any of the shapes the admin pages send:
    `{role: fan|creator|admin, is_creator?}`, `{is_super_admin, role: admin|user}`, `{is_creator, creator_type}`."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["fan", "creator", "admin", "user"] | None = None
    is_creator: StrictBool | None = Field(
        default=None, validation_alias=AliasChoices("is_creator", "isCreator")
    )
    is_super_admin: StrictBool | None = Field(
        default=None, validation_alias=AliasChoices("is_super_admin", "isSuperAdmin")
    )
    creator_type: Annotated[StrictStr, StringConstraints(strip_whitespace=True, max_length=50)] | None = (
        Field(default=None, validation_alias=AliasChoices("creator_type", "creatorType"))
    )

    @model_validator(mode="after")
    def _consistent(self) -> RoleChange:
        if self.role is None and self.is_super_admin is None and self.is_creator is None:
            raise ValueError("send role, is_super_admin or is_creator")
        if (
            self.role is not None
            and self.is_super_admin is not None
            and (self.role == "admin") != self.is_super_admin
        ):
            raise ValueError(f"role {self.role!r} contradicts is_super_admin={self.is_super_admin}")
        if (self.role == "creator" and self.is_creator is False) or (self.role == "fan" and self.is_creator):
            raise ValueError(f"role {self.role!r} contradicts is_creator={self.is_creator}")
        return self

    def applied_to(self, role: str, is_creator: bool) -> tuple[str, bool]:
        """The (role, is_creator) this change makes of a user who has (role, is_creator); 'user' = not an admin."""
        if self.is_super_admin is not None:
            admin = self.is_super_admin
        else:
            admin = self.role == "admin" if self.role is not None else role == "admin"
        if self.is_creator is not None:
            creator = self.is_creator
        else:
            creator = {"creator": True, "fan": False}.get(self.role or "", is_creator)
        return ("admin" if admin else "creator" if creator else "fan"), creator

    @property
    def removes_creator(self) -> bool:
        """An explicit "not a creator" (which also rejects a pending application)."""
        return self.role == "fan" or self.is_creator is False


def lock_target(conn: Conn, user_id: UUID) -> dict[str, Any]:
    """The user an admin acts on, locked; 404 unknown, 403 the system account."""
    target = conn.execute(
        "SELECT id, role, is_creator, creator_type FROM users WHERE id = %(id)s FOR UPDATE", {"id": user_id}
    ).fetchone()
    if target is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    if target["role"] == "system":
        raise Forbidden("System accounts cannot be changed", code="SYSTEM_ACCOUNT")
    return dict(target)


def write_role(
    conn: Conn, admin: User, target: dict[str, Any], role: str, is_creator: bool, creator_type: str | None
) -> dict[str, Any]:
    """Set a locked target's role and creator status (the caller audits); 409 when an admin would demote themself.
    `creator_type` fills an empty category only when the user is a creator: a creator's own category is kept."""
    if target["id"] == admin.id and role != "admin":
        raise Conflict("You cannot remove your own admin role; ask another admin", code="CANNOT_DEMOTE_SELF")
    user = conn.execute(
        f"""UPDATE users SET role = %(role)s, is_creator = %(c)s, updated_at = now(),
                   creator_type = CASE WHEN %(c)s THEN coalesce(creator_type, %(type)s) ELSE creator_type END
            WHERE id = %(id)s RETURNING {ADMIN_USER_COLUMNS}""",  # noqa: S608 - fixed text
        {"role": role, "c": is_creator, "type": creator_type or None, "id": target["id"]},
    ).fetchone()
    assert user is not None  # the row is locked by lock_target
    return dict(user)


def set_role(conn: Conn, admin: User, target_id: UUID, change: RoleChange) -> dict[str, Any]:
    """PUT /admin/users/{uid}/role. Making someone a creator approves their pending application; an explicit
    "not a creator" rejects it. One audit row per change."""
    target = lock_target(conn, target_id)
    role, is_creator = change.applied_to(target["role"], target["is_creator"])
    user = write_role(conn, admin, target, role, is_creator, change.creator_type)
    decision = "approved" if is_creator else ("rejected" if change.removes_creator else None)
    application = None
    if decision:
        application = conn.execute(
            """UPDATE creator_applications SET status = %(s)s, reviewed_at = now(), reviewed_by = %(admin)s
               WHERE user_id = %(id)s AND status = 'pending'
               RETURNING id, status, submitted_at AS "submittedAt", reviewed_at AS "reviewedAt\"""",
            {"s": decision, "admin": admin.id, "id": target_id},
        ).fetchone()
    audit.record(
        conn,
        admin.id,
        audit.SET_ROLE,
        target_user_id=target_id,
        details={
            "from": {"role": target["role"], "is_creator": target["is_creator"]},
            "to": {"role": role, "is_creator": is_creator},
            "request": change.model_dump(exclude_none=True),
            "applicationId": str(application["id"]) if application else None,
        },
    )
    return {
        "user": user,
        "application": application,
        "message": f"@{user['username']} is now {_describe(user)}",
    }


def _describe(user: dict[str, Any]) -> str:
    if user["role"] == "admin":
        return "an admin and a creator" if user["is_creator"] else "an admin"
    return "a creator" if user["is_creator"] else "a fan"

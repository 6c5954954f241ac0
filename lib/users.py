"""Users: the row behind every Supabase identity."""

from __future__ import annotations

import re
import secrets
from uuid import UUID

from pydantic import BaseModel

from lib.db import Conn

USERNAME_RE = re.compile(r"^[a-z0-9_]{3,30}$")

_USER_COLUMNS = "id, email, username, display_name, role, is_creator, token_balance"


class User(BaseModel):
    """The authenticated user as the functions see it."""

    id: UUID
    email: str | None
    username: str
    display_name: str | None
    role: str
    is_creator: bool
    token_balance: int

    @property
    def is_admin(self) -> bool:
        """Admins are set in the database (users.role = 'admin')."""
        return self.role == "admin"


def username_from_email(email: str | None) -> str:
    """A valid username base from an email's local part."""
    local = (email or "").split("@", 1)[0].lower()
    base = re.sub(r"[^a-z0-9_]+", "_", local).strip("_")[:24]
    if len(base) < 3:
        base = (base + "_user")[:24].strip("_") or "user"
    return base


def get(conn: Conn, user_id: UUID | str) -> User | None:
    """One user by id."""
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()  # noqa: S608
    return User.model_validate(row) if row else None


def get_or_create(conn: Conn, user_id: UUID | str, email: str | None) -> tuple[User, bool]:
    """The user's row, created on first sight (race-safe); returns (user, created)."""
    existing = get(conn, user_id)
    if existing:
        return existing, False
    base = username_from_email(email)
    for attempt in range(8):
        username = base if attempt == 0 else f"{base[:23]}_{secrets.randbelow(10**6):06d}"
        # ON CONFLICT DO NOTHING covers both a concurrent first request (id) and a taken username.
        row = conn.execute(
            f"""INSERT INTO users (id, email, username, display_name)
                VALUES (%(id)s, %(email)s, %(username)s, %(username)s)
                ON CONFLICT DO NOTHING
                RETURNING {_USER_COLUMNS}""",  # noqa: S608
            {"id": user_id, "email": email, "username": username},
        ).fetchone()
        if row:
            return User.model_validate(row), True
        existing = get(conn, user_id)
        if existing:
            return existing, False
    raise RuntimeError(
        "could not allocate a username"
    )  # 8 random suffixes all taken: astronomically unlikely

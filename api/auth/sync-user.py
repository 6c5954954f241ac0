"""POST /api/auth/sync-user: get-or-create my user row from my verified token."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from lib import users
from lib.auth import Claims
from lib.db import DbConn
from lib.http import create_app

app = create_app(rate_limit="auth")


class SyncUser(BaseModel):
    """Body: `email` is accepted for compatibility but the token's email wins; `metadata` names a new user."""

    model_config = ConfigDict(extra="ignore")

    email: str | None = None
    metadata: dict[str, Any] | None = None


@app.post("/api/auth/sync-user")
def sync_user(claims: Claims, conn: DbConn, body: SyncUser | None = None) -> dict[str, Any]:
    """{user: {id, email, username, display_name, is_creator, role, token_balance}, isNewUser}."""
    user, created = users.sync(conn, claims, body.metadata if body else None)
    return {"user": user.model_dump(mode="json"), "isNewUser": created}

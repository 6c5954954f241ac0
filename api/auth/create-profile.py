"""POST /api/auth/create-profile: mobile sign-up names my new row (idempotent; never makes me a creator)."""

from typing import Any

from lib import users
from lib.auth import Claims
from lib.db import DbConn
from lib.http import create_app

app = create_app(rate_limit="auth")


@app.post("/api/auth/create-profile")
def create_profile(body: users.CreateProfile, claims: Claims, conn: DbConn) -> dict[str, Any]:
    """{success, user: {id, email, username, display_name, is_creator, role, token_balance}, isNewUser}."""
    return users.create_profile(conn, claims, body)

"""Access tokens for the seeded users, minted like Supabase's (HS256 with the project's secret)."""

from __future__ import annotations

import time
from uuid import UUID

import jwt

from localdev import devenv


def token(user_id: UUID, *, email: str | None = None, ttl_s: int = 4 * 3600) -> str:
    """A valid access token for `user_id` (no `iss`: the bench's functions run without SUPABASE_URL)."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl_s,
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, devenv.SUPABASE_JWT_SECRET, algorithm="HS256")


def bearer(user_id: UUID) -> tuple[str, str]:
    """The Authorization header for `user_id`."""
    return ("authorization", f"Bearer {token(user_id)}")

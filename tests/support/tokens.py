"""Mint Supabase-shaped access tokens for tests."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import jwt

from lib.config import get_settings


def make_token(
    sub: UUID | str,
    *,
    email: str | None = None,
    secret: str | None = None,
    aud: str | None = "authenticated",
    iss: str | None = None,
    exp_in: int = 3600,
    role: str = "authenticated",
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    """An access token like Supabase issues (HS256 with the project's secret unless told otherwise)."""
    s = get_settings()
    now = int(time.time())
    claims: dict[str, Any] = {"sub": str(sub), "role": role, "iat": now, "exp": now + exp_in, **extra}
    if aud is not None:
        claims["aud"] = aud
    if email is not None:
        claims["email"] = email
    issuer = iss if iss is not None else (s.supabase_url.rstrip("/") + "/auth/v1" if s.supabase_url else None)
    if issuer:
        claims["iss"] = issuer
    key = secret if secret is not None else s.supabase_jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def bearer(token: str) -> dict[str, str]:
    """Authorization header."""
    return {"Authorization": f"Bearer {token}"}

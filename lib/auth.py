"""Supabase access tokens -> the current user (HS256 secret or the project's JWKS)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, Request

from lib import users
from lib.config import get_settings
from lib.db import DbConn
from lib.errors import Forbidden, Unauthorized
from lib.users import User

_LEEWAY_S = 30


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verify_token(token: str) -> dict[str, Any]:
    """Verified claims of a Supabase user access token, or Unauthorized."""
    s = get_settings()
    options = {"require": ["exp", "sub", "aud"]}
    issuer = s.supabase_url.rstrip("/") + "/auth/v1" if s.supabase_url else None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            s.supabase_jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience="authenticated",
            issuer=issuer,
            leeway=_LEEWAY_S,
            options=options,  # type: ignore[arg-type]
        )
        UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise Unauthorized() from exc
    return claims


def claims_for(request: Request) -> dict[str, Any]:
    """The request's verified claims, verified once per request."""
    cached = request.scope.setdefault("state", {}).get("claims")
    if cached is not None:
        return dict(cached)
    token = _bearer(request)
    if token is None:
        raise Unauthorized()
    claims = verify_token(token)
    request.scope["state"]["claims"] = claims
    request.scope["state"]["user_id"] = claims["sub"]
    return claims


def peek_user_id(request: Request) -> str | None:
    """The verified user id if the request carries a valid token, else None (never raises)."""
    try:
        return str(claims_for(request)["sub"])
    except Unauthorized:
        return None


def current_user(request: Request, conn: DbConn) -> User:
    """The authenticated user, created on their first request."""
    claims = claims_for(request)
    user, _ = users.get_or_create(conn, claims["sub"], claims.get("email"))
    return user


def current_creator(user: Annotated[User, Depends(current_user)]) -> User:
    """Creators only."""
    if not user.is_creator:
        raise Forbidden("Only creators can do this", code="CREATOR_ONLY")
    return user


def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """Admins only."""
    if not user.is_admin:
        raise Forbidden("Admins only", code="ADMIN_ONLY")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
CreatorUser = Annotated[User, Depends(current_creator)]
AdminUser = Annotated[User, Depends(current_admin)]

"""Supabase access tokens -> the current user (HS256 secret or the project's JWKS).

A token is verified with exactly one key, and that key decides the algorithm:
 - header `alg` HS256 -> the project's legacy JWT secret (SUPABASE_JWT_SECRET), HS256 only;
 - anything else -> the JWKS key named by the header's `kid` (ES256 or RS256, as the key says).
An HS256 token can never be checked against a public key, nor an asymmetric one against the secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import httpx
import jwt
from fastapi import Depends, Request

from lib import db, presence, users
from lib.config import get_settings, settings_cached
from lib.db import DbConn
from lib.errors import Forbidden, Unauthorized
from lib.users import User

log = logging.getLogger("digis.auth")

LEEWAY_S = 10
JWKS_TTL_S = 600.0  # Supabase's own edge caches the JWKS for 10 minutes
JWKS_MIN_REFETCH_S = 60.0  # an unknown kid refetches at most this often
JWKS_TIMEOUT_S = 2.0
_JWKS_MAX_BYTES = 64 * 1024
_ASYMMETRIC = {"ES256": "EC", "RS256": "RSA"}
# Supabase's API keys (anon, service_role) are JWTs signed with the same secret: never a user.
_API_KEY_ROLES = frozenset({"anon", "service_role", "supabase_admin"})
_OPTIONS: dict[str, Any] = {"require": ["exp", "sub", "aud"], "verify_signature": True}


@dataclass(frozen=True)
class _VerifyingKey:
    key: Any
    algorithm: str


class JwksCache:
    """The project's public signing keys by kid: cached, refreshed after the TTL, refetched rarely on a miss."""

    def __init__(
        self, url: str, timeout_s: float = JWKS_TIMEOUT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._clock = clock
        self._keys: dict[str, _VerifyingKey] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, kid: str) -> _VerifyingKey | None:
        """The key for `kid`, fetching the JWKS when stale or when the kid is new (rate-limited)."""
        key = self._keys.get(kid)
        if key is not None and self._clock() - self._fetched_at < JWKS_TTL_S:
            return key
        with self._lock:
            now = self._clock()
            fresh = now - self._fetched_at < JWKS_TTL_S
            if (key is None or not fresh) and now - self._attempted_at >= JWKS_MIN_REFETCH_S:
                self._attempted_at = now
                self._refresh()
            # A failed refresh keeps serving the keys we had: Supabase being slow must not log everyone out.
            return self._keys.get(kid)

    def _refresh(self) -> None:
        try:
            response = httpx.get(self.url, timeout=self.timeout_s, follow_redirects=False, trust_env=False)
            response.raise_for_status()
            if len(response.content) > _JWKS_MAX_BYTES:
                raise ValueError("JWKS too large")
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS fetch failed: %s", type(exc).__name__)
            return
        self._keys = parse_jwks(document)
        self._fetched_at = self._clock()


def parse_jwks(document: Any) -> dict[str, _VerifyingKey]:
    """Usable signature keys of a JWKS document by kid (symmetric and unknown-algorithm keys are skipped)."""
    keys: dict[str, _VerifyingKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        kty = jwk.get("kty")
        alg = jwk.get("alg") or {"EC": "ES256", "RSA": "RS256"}.get(str(kty))
        if (
            not isinstance(alg, str)
            or alg not in _ASYMMETRIC
            or _ASYMMETRIC[alg] != kty
            or jwk.get("use", "sig") != "sig"
        ):
            continue
        try:
            keys[jwk["kid"]] = _VerifyingKey(jwt.PyJWK(jwk, algorithm=alg).key, alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            log.warning("skipping an unusable JWKS key (kid %s)", jwk["kid"][:40])
    return keys


@settings_cached
def jwks_cache() -> JwksCache | None:
    """The instance's JWKS cache, or None when SUPABASE_URL is not set (HS256 only)."""
    base = get_settings().supabase_url.rstrip("/")
    return JwksCache(base + "/auth/v1/.well-known/jwks.json") if base else None


def _key_for(header: dict[str, Any]) -> _VerifyingKey:
    alg = header.get("alg")
    if alg == "HS256":
        secret = get_settings().supabase_jwt_secret.get_secret_value()
        if not secret:
            raise Unauthorized()
        return _VerifyingKey(secret, "HS256")
    kid = header.get("kid")
    cache = jwks_cache()
    if alg not in _ASYMMETRIC or cache is None or not isinstance(kid, str) or not 0 < len(kid) <= 256:
        raise Unauthorized()
    key = cache.get(kid)
    if key is None:
        raise Unauthorized()
    return key


def verify_token(token: str) -> dict[str, Any]:
    """Verified claims of a Supabase user access token, or Unauthorized (never anything else)."""
    s = get_settings()
    issuer = s.supabase_url.rstrip("/") + "/auth/v1" if s.supabase_url else None
    try:
        key = _key_for(jwt.get_unverified_header(token))
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            audience="authenticated",
            issuer=issuer,
            leeway=LEEWAY_S,
            options=_OPTIONS,  # type: ignore[arg-type]
        )
        if claims.get("role") in _API_KEY_ROLES:
            raise Unauthorized()
        claims["sub"] = str(UUID(str(claims["sub"])))
    except Unauthorized:
        raise
    except Exception as exc:  # a malformed token must be a 401 whatever the parser trips on
        raise Unauthorized() from exc
    return claims


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def claims_for(request: Request) -> dict[str, Any]:
    """The request's verified claims, verified once per request."""
    state = request.scope.setdefault("state", {})
    cached = state.get("claims")
    if cached is not None:
        return dict(cached)
    token = _bearer(request)
    if token is None:
        raise Unauthorized()
    claims = verify_token(token)
    state["claims"] = claims
    state["user_id"] = claims["sub"]
    return dict(claims)


def peek_user_id(request: Request) -> str | None:
    """The verified user id if the request carries a valid token, else None (never raises)."""
    try:
        return str(claims_for(request)["sub"])
    except Unauthorized:
        return None


def peek_user_uuid(request: Request) -> UUID | None:
    """Like peek_user_id, as a UUID: public routes that say a little more to a signed-in viewer."""
    user_id = peek_user_id(request)
    return UUID(user_id) if user_id else None


def current_user(request: Request, conn: DbConn) -> User:
    """The authenticated user, created on their first request; refreshes their presence after the response.

    The rate limiter usually sends the heartbeat itself, in its own Redis round trip (lib.http); whoever finds it
    due first sends it. A creator's place among the online creators is refreshed here, after the commit."""
    claims = claims_for(request)
    email = claims.get("email")
    user, _ = users.get_or_create(conn, claims["sub"], email if isinstance(email, str) and email else None)
    if presence.due(("creator", user.id) if user.is_creator else user.id):
        db.after_commit(conn, lambda: presence.touch(user.id, creator=user.is_creator))
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


Claims = Annotated[dict[str, Any], Depends(claims_for)]
CurrentUser = Annotated[User, Depends(current_user)]
CreatorUser = Annotated[User, Depends(current_creator)]
AdminUser = Annotated[User, Depends(current_admin)]

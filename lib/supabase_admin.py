"""Supabase Auth Admin API (service-role key): the one call we make, updating a user's metadata."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import httpx

from lib.config import get_settings, settings_cached
from lib.errors import AppError, NotFound, ServiceUnavailable
from lib.users import User

log = logging.getLogger("digis.supabase")


@settings_cached
def _client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(get_settings().supabase_timeout_s), trust_env=False)


def update_user_metadata(user_id: UUID, metadata: dict[str, Any]) -> dict[str, Any]:
    """PUT /auth/v1/admin/users/{id} {user_metadata}; GoTrue merges the keys. Returns the stored user_metadata."""
    s = get_settings()
    if not s.supabase_url:
        raise ServiceUnavailable("Supabase is not configured (SUPABASE_URL)", code="SUPABASE_NOT_CONFIGURED")
    key = s.supabase_service_role_key.get_secret_value()
    url = f"{s.supabase_url.rstrip('/')}/auth/v1/admin/users/{user_id}"
    try:
        response = _client().put(
            url,
            json={"user_metadata": metadata},
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
        )
    except httpx.HTTPError as exc:
        log.warning("supabase admin call failed: %s", type(exc).__name__)
        raise ServiceUnavailable(
            "Supabase Auth is unreachable; try again", code="SUPABASE_UNAVAILABLE"
        ) from exc
    if response.status_code == 404:
        raise NotFound("Supabase has no such user", code="SUPABASE_USER_NOT_FOUND")
    if response.status_code >= 400:
        log.warning("supabase admin call answered %s", response.status_code)
        raise AppError("Supabase Auth refused the update", status=502, code="SUPABASE_ERROR")
    try:
        stored = response.json().get("user_metadata")
    except (ValueError, AttributeError):
        stored = None
    return stored if isinstance(stored, dict) else dict(metadata)


def push_identity(user: User) -> dict[str, Any]:
    """POST /auth/sync-metadata: copy role, isCreator, isAdmin and username into the user's Supabase metadata.

    The frontend reads these for display only; the API itself always decides from the database.
    """
    metadata = {
        "role": user.role,
        "isCreator": user.is_creator,
        "isAdmin": user.is_admin,
        "username": user.username,
    }
    update_user_metadata(user.id, metadata)
    return {"metadata": metadata}

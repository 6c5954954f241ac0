"""Agora: RTC tokens (agora-token-builder, imported only here), stable uids, and the REST kicking rule.

A token's privileges expire at an absolute unix time: for a call, when the paid time runs out plus `GRACE_S`, so a
client that stops paying drops by itself. Removing a fan who ran out of tokens at once goes through Agora's REST
API (a kicking rule) after the commit, behind a timeout and a circuit breaker: Agora being slow or down costs a
request at most `agora_timeout_s`, and while the breaker is open it costs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal
from uuid import UUID

import httpx
from pydantic import AliasChoices, BaseModel, Field

from lib import db
from lib.config import get_settings
from lib.errors import NotFound

log = logging.getLogger("digis.agora")

Role = Literal["host", "audience"]

GRACE_S = 30  # a paid call's token outlives the paid time by this much: room for the next minute's charge
STREAM_TOKEN_TTL_S = 3600  # live streams are not billed per minute; their tokens are renewed hourly
KICK_BAN_S = 600  # long enough that the client cannot rejoin the ended call; its token expires sooner anyway


class TokenRequest(BaseModel):
    """POST /agora/token `{channelName}` and POST /agora/refresh-token `{channel}` (either key on either route)."""

    channel: str = Field(validation_alias=AliasChoices("channelName", "channel"), min_length=1, max_length=64)
    role: Role | None = None


# Called with (channel, uid, role, expires_at) after each token is built: lib.streams counts a stream host's token
# renewal as a sign of life. A listener must never raise (token minting does not depend on it).
TokenListener = Callable[[str, int, Role, int], None]
_token_listeners: list[TokenListener] = []


def on_token_minted(listener: TokenListener) -> None:
    """Register `listener` to hear of every RTC token minted (once per listener)."""
    if listener not in _token_listeners:
        _token_listeners.append(listener)


# Privilege numbers of AccessToken v006 (agora-token-builder's kJoinChannel ... kPublishDataStream).
_JOIN, _PUBLISH_AUDIO, _PUBLISH_VIDEO, _PUBLISH_DATA = 1, 2, 3, 4


def app_id() -> str:
    """The Agora App ID clients join with."""
    return get_settings().agora_app_id


def rtc_token(
    channel: str,
    uid: int,
    *,
    role: Role,
    expires_at: int,
    salt: int | None = None,
    issued_at: int | None = None,
) -> str:
    """An RTC token (v006) for `uid` in `channel` whose privileges expire at the unix time `expires_at`.

    `salt` and `issued_at` are random and now+24h unless given (Agora's published test vector fixes both).
    """
    from agora_token_builder.AccessToken import AccessToken  # cold start: only functions minting tokens pay

    s = get_settings()
    token = AccessToken(s.agora_app_id, s.agora_app_certificate.get_secret_value(), channel, uid)
    if salt is not None:
        token.salt = salt
    if issued_at is not None:
        token.ts = issued_at
    token.addPrivilege(_JOIN, expires_at)
    if role == "host":
        for privilege in (_PUBLISH_AUDIO, _PUBLISH_VIDEO, _PUBLISH_DATA):
            token.addPrivilege(privilege, expires_at)
    built = str(token.build())
    for listener in _token_listeners:
        listener(channel, uid, role, expires_at)
    return built


def uid_for(conn: db.Conn, user_id: UUID) -> int:
    """The user's Agora uid: stable for life, unique among users."""
    row = conn.execute("SELECT agora_uid FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    if row is None:
        raise NotFound("No such user", code="USER_NOT_FOUND")
    return int(row["agora_uid"])


class CircuitBreaker:
    """Fail fast after `threshold` consecutive failures, for `cooldown_s`; then let one trial call through."""

    def __init__(
        self, *, threshold: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True while calls are refused without being tried."""
        with self._lock:
            return self._opened_at is not None and self._clock() - self._opened_at < self.cooldown_s

    def allow(self) -> bool:
        """Whether a call may be tried now (a half-open breaker lets one trial through per cooldown)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._opened_at = self._clock()  # half-open: this caller tries; the others wait another cooldown
            return True

    def record(self, ok: bool) -> None:
        """Count the outcome of a call that `allow()` let through."""
        with self._lock:
            if ok:
                self._failures, self._opened_at = 0, None
                return
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = self._clock()

    def reset(self) -> None:
        """Close the breaker (tests)."""
        with self._lock:
            self._failures, self._opened_at = 0, None


breaker = CircuitBreaker()


def kick_from_channel(channel: str, uid: int, *, ban_s: int = KICK_BAN_S) -> bool:
    """Remove `uid` from `channel` now (a kicking rule); True when Agora confirmed. Never raises."""
    s = get_settings()
    if not s.agora_customer_id or not s.agora_customer_secret.get_secret_value():
        log.info("agora kick skipped: AGORA_CUSTOMER_ID/SECRET not set (the token expiry drops the client)")
        return False
    if not breaker.allow():
        log.warning("agora kick skipped: circuit open after repeated failures")
        return False
    body = {
        "appid": s.agora_app_id,
        "cname": channel,
        "uid": uid,
        "time_in_seconds": ban_s,
        "privileges": ["join_channel"],
    }
    ok = False
    try:
        response = httpx.post(
            s.agora_rest_base.rstrip("/") + "/dev/v1/kicking-rule",
            json=body,
            auth=(s.agora_customer_id, s.agora_customer_secret.get_secret_value()),
            timeout=s.agora_timeout_s,
            trust_env=False,
        )
        ok = response.is_success and response.json().get("status") == "success"
        if not ok:
            log.warning("agora kick refused: HTTP %s %s", response.status_code, response.text[:200])
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("agora kick failed: %s", type(exc).__name__)
    breaker.record(ok)
    return ok


def kick_after_commit(conn: db.Conn, channel: str, uid: int) -> None:
    """Kick `uid` from `channel` once the transaction commits: never inside, never delaying, the transaction."""
    db.after_commit(conn, lambda: _kick_quietly(channel, uid))


def _kick_quietly(channel: str, uid: int) -> None:
    kick_from_channel(channel, uid)


def expires_in(expires_at: int, now: float | None = None) -> int:
    """Seconds from now until the unix time `expires_at` (never negative)."""
    return max(0, expires_at - int(time.time() if now is None else now))

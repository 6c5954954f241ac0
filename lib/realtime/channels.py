"""Pusher channel names and channel authorization (who may subscribe is the caller's rule)."""

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from lib.errors import BadRequest
from lib.realtime.client import pusher_client

NAME_RE = re.compile(r"\A[-a-zA-Z0-9_=@,.;]{1,200}\Z")  # Pusher's channel-name alphabet and length
_SOCKET_ID_RE = re.compile(r"\A\d+\.\d+\Z")

USER_PREFIX = "private-user-"
CALL_PREFIX = "private-call-"
STREAM_PREFIX = "private-stream-"  # private, not presence: Pusher caps presence channels at 100 members


def _channel(prefix: str, suffix: object) -> str:
    name = f"{prefix}{suffix}"
    if not NAME_RE.match(name):
        raise ValueError(f"invalid Pusher channel name: {name!r}")
    return name


def user_channel(user_id: UUID | str) -> str:
    """`private-user-{userId}`: one user's notifications."""
    return _channel(USER_PREFIX, user_id)


def call_channel(channel: str) -> str:
    """`private-call-{channel}`: both participants of a call."""
    return _channel(CALL_PREFIX, channel)


def stream_channel(channel: str) -> str:
    """`private-stream-{channel}`: a live stream's audience (any size; counts come from webhooks)."""
    return _channel(STREAM_PREFIX, channel)


def authorize_channel(
    socket_id: str, channel_name: str, *, presence_user: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Pusher's signature for a private or presence subscription; access rules belong to the caller.

    `presence_user` is Pusher's channel data for presence channels: `{"user_id": ..., "user_info": {...}}`; a
    private channel has none, so it is ignored there (a stream's channel became private: callers may still pass it).
    """
    if not _SOCKET_ID_RE.match(socket_id):
        raise BadRequest("socket_id is not a Pusher socket id.", code="INVALID_SOCKET_ID")
    if not NAME_RE.match(channel_name) or not channel_name.startswith(("private-", "presence-")):
        raise BadRequest("channel_name is not a private or presence channel.", code="INVALID_CHANNEL")
    custom: dict[str, Any] | None = None
    if channel_name.startswith("presence-"):
        if presence_user is None or presence_user.get("user_id") in (None, ""):
            raise ValueError("a presence channel needs presence_user with a user_id")
        user_info = dict(presence_user.get("user_info") or {})
        custom = {"user_id": str(presence_user["user_id"]), "user_info": user_info}
    return {str(k): str(v) for k, v in pusher_client().authenticate(channel_name, socket_id, custom).items()}

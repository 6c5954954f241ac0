"""Who may join which channel: Pusher channel authorization and Agora media tokens, for calls and live streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lib import agora, realtime, streams
from lib.calls import billing
from lib.calls.models import AgoraToken, Call
from lib.calls.queries import COLUMNS
from lib.db import Conn
from lib.errors import Conflict, Forbidden, NotFound, PaymentRequired
from lib.users import User


def _call_by_channel(conn: Conn, channel: str) -> Call | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM call_sessions WHERE channel = %(c)s",  # noqa: S608
        {"c": channel},
    ).fetchone()
    return Call.model_validate(row) if row else None


def authorize_pusher(conn: Conn, user: User, socket_id: str, channel_name: str) -> dict[str, Any]:
    """Sign a subscription: my user channel, a call I am in, a live stream's (private) channel; 403 otherwise."""
    allowed = False
    if channel_name.startswith(realtime.USER_PREFIX):
        allowed = channel_name == realtime.user_channel(user.id)
    elif channel_name.startswith(realtime.CALL_PREFIX):
        call = _call_by_channel(conn, channel_name.removeprefix(realtime.CALL_PREFIX))
        allowed = call is not None and call.has_party(user.id)
    elif channel_name.startswith(realtime.STREAM_PREFIX):
        stream = streams.live_stream_by_channel(conn, channel_name.removeprefix(realtime.STREAM_PREFIX))
        if stream is not None:
            streams.admit_viewer(conn, stream["id"], user.id)
            allowed = True
    if not allowed:
        raise Forbidden("You may not subscribe to this channel", code="CHANNEL_FORBIDDEN")
    return realtime.authorize_channel(socket_id, channel_name)


def agora_token(conn: Conn, user: User, channel: str, role: agora.Role | None, now: datetime) -> AgoraToken:
    """A media token for a call I am in (until its paid time runs out) or a live stream I host or watch.

    In a call both sides publish (role host). On a stream the creator is host and everyone else audience; a
    role asked for is honoured when allowed (a host may join as audience), and without one it is the default.
    """
    call = _call_by_channel(conn, channel)
    if call is not None and call.has_party(user.id):
        if call.state != "active":
            raise Conflict(f"The call is {call.state}", code="CALL_NOT_ACTIVE", state=call.state)
        expires_at = billing.join_expiry(call)
        if expires_at <= now.timestamp():
            raise PaymentRequired("The paid time of this call has run out", code="INSUFFICIENT_TOKENS")
        return media_token(conn, user, channel, "host", expires_at, now)
    stream = None if call is not None else streams.live_stream_by_channel(conn, channel)
    if stream is None:
        raise NotFound("No call or live stream of yours on this channel", code="CHANNEL_NOT_FOUND")
    streams.admit_viewer(conn, stream["id"], user.id)
    is_host = stream["creator_id"] == user.id
    if role == "host" and not is_host:
        raise Forbidden("Only the stream's creator can join as host", code="NOT_STREAM_HOST")
    granted: agora.Role = role or ("host" if is_host else "audience")
    return media_token(conn, user, channel, granted, int(now.timestamp()) + agora.STREAM_TOKEN_TTL_S, now)


def media_token(
    conn: Conn, user: User, channel: str, role: agora.Role, expires_at: int, now: datetime
) -> AgoraToken:
    """An Agora RTC token for the user's stable uid, expiring at the unix time `expires_at`."""
    uid = agora.uid_for(conn, user.id)
    token = agora.rtc_token(channel, uid, role=role, expires_at=expires_at)
    return AgoraToken(
        rtcToken=token,
        token=token,
        channel=channel,
        uid=uid,
        role=role,
        appId=agora.app_id(),
        expiresAt=datetime.fromtimestamp(expires_at, tz=now.tzinfo),
        expiresIn=agora.expires_in(expires_at, now.timestamp()),
    )

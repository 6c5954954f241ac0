"""Liveness and audience from signed webhooks: Agora's channel events (NCS) and Pusher's channel webhooks.

Agora (Notifications, "NCS"): POST JSON `{noticeId, productId, eventType, notifyMs, sid?, payload: {channelName,
uid?, clientSeq?, ts, reason?}}` signed over the raw body with the project's Notifications secret:
`Agora-Signature` = hex HMAC-SHA1, `Agora-Signature-V2` = hex HMAC-SHA256 (either, when valid, is enough).
Events: 101/102 channel create/destroy, 103/104 broadcaster join/leave, 105/106 audience join/leave, 111/112 role
switched to broadcaster/audience. Agora retries and may reorder: every event is applied only when it is newer,
per user, than the last one applied (`ts` in seconds, then `clientSeq`), so a repeat or a late one changes nothing.

Pusher: POST JSON `{time_ms, events: [{name, channel, subscription_count?}]}` with `X-Pusher-Key` (the app key)
and `X-Pusher-Signature` = hex HMAC-SHA256 of the raw body with the app secret. `subscription_count` sets the
count of the stream's private channel; `channel_occupied` makes it at least 1; `channel_vacated` makes it 0.
Counts older than the last applied (`time_ms`) are ignored.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg.rows import DictRow
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib import realtime
from lib.config import get_settings
from lib.db import Conn
from lib.errors import BadRequest, Unauthorized
from lib.streams import queries, viewers
from lib.streams.models import WebhookAck
from lib.streams.service import HOST_TIMEOUT_S, announce_count, schedule_check

log = logging.getLogger("digis.streams.webhooks")

CHANNEL_CREATE, CHANNEL_DESTROY = 101, 102
HOST_JOIN, HOST_LEAVE, AUDIENCE_JOIN, AUDIENCE_LEAVE = 103, 104, 105, 106
BECAME_HOST, BECAME_AUDIENCE = 111, 112
_MAX_EVENTS = 1000  # a batched Pusher webhook carries at most this many events


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AgoraPayload(_Lenient):
    """`payload` of a channel event."""

    channelName: str = Field(min_length=1, max_length=200)
    uid: int | None = Field(default=None, ge=0, le=2**32 - 1)
    clientSeq: int = Field(default=0, ge=0)
    ts: int = Field(ge=0)


class AgoraEvent(_Lenient):
    """One Agora Notifications callback."""

    noticeId: str = ""
    eventType: int
    notifyMs: int = 0
    payload: AgoraPayload


class PusherEvent(_Lenient):
    """One event of a Pusher webhook."""

    name: str
    channel: str = Field(default="", max_length=200)
    subscription_count: int | None = Field(default=None, ge=0)


class PusherWebhook(_Lenient):
    """A Pusher webhook body."""

    time_ms: int = Field(ge=0)
    events: list[PusherEvent] = Field(max_length=_MAX_EVENTS)


def _hmac_hex(secret: str, raw: bytes, digest: str) -> str:
    return hmac.new(secret.encode(), raw, digest).hexdigest()


def _matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected, given.strip().lower())


def _parse(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise BadRequest("The webhook body is not the documented JSON", code="INVALID_WEBHOOK_BODY") from exc


async def verified_agora_event(request: Request) -> AgoraEvent:
    """FastAPI dependency: the event from a raw body signed with AGORA_NCS_SECRET (401 otherwise)."""
    raw = await request.body()
    secret = get_settings().agora_ncs_secret.get_secret_value()
    v2, v1 = request.headers.get("agora-signature-v2"), request.headers.get("agora-signature")
    ok = bool(secret) and (
        _matches(_hmac_hex(secret, raw, "sha256"), v2) or _matches(_hmac_hex(secret, raw, "sha1"), v1)
    )
    if not ok:
        log.warning("rejected an Agora notification: bad or missing signature (or AGORA_NCS_SECRET unset)")
        raise Unauthorized("Invalid Agora-Signature", code="INVALID_SIGNATURE")
    event: AgoraEvent = _parse(raw, AgoraEvent)
    return event


async def verified_pusher_webhook(request: Request) -> PusherWebhook:
    """FastAPI dependency: the webhook from a raw body signed with the Pusher app secret (401 otherwise)."""
    raw = await request.body()
    s = get_settings()
    key_ok = hmac.compare_digest(request.headers.get("x-pusher-key", "").encode(), s.pusher_key.encode())
    expected = _hmac_hex(s.pusher_secret.get_secret_value(), raw, "sha256")
    if not (key_ok and _matches(expected, request.headers.get("x-pusher-signature"))):
        log.warning("rejected a Pusher webhook: bad key or signature")
        raise Unauthorized("Invalid X-Pusher-Signature", code="INVALID_SIGNATURE")
    webhook: PusherWebhook = _parse(raw, PusherWebhook)
    return webhook


AgoraNotification = Annotated[AgoraEvent, Depends(verified_agora_event)]
PusherNotification = Annotated[PusherWebhook, Depends(verified_pusher_webhook)]


# ---- applying them -------------------------------------------------------------------------------------------


def _recount(
    conn: Conn, stream: DictRow, *, now: datetime, pusher: int | None = None, pusher_ms: int | None = None
) -> None:
    """Store the sources' sizes and the viewer count (largest of them and the heartbeat count); announce it."""
    agora_audience = queries.count_audience(conn, stream["id"])
    subscribers = stream["pusher_subscribers"] if pusher is None else pusher
    count_ms = stream["pusher_count_ms"] if pusher_ms is None else pusher_ms
    heartbeats = viewers.count(stream["id"], now.timestamp()) or 0
    total = max(agora_audience, subscribers, heartbeats)
    queries.set_source_counts(
        conn,
        stream["id"],
        agora_audience=agora_audience,
        pusher_subscribers=subscribers,
        pusher_count_ms=count_ms,
        total=total,
    )
    # Announced at most once a second per stream; the row (directory, join answer) is always exact.
    if total != stream["viewer_count"] and viewers.claim_announcement(stream["id"]):
        announce_count(conn, stream["id"], stream["channel"], total)


def apply_agora(conn: Conn, event: AgoraEvent, *, now: datetime | None = None) -> WebhookAck:
    """Apply one Agora channel event to the live stream on its channel (other channels: acknowledged, ignored)."""
    now = now or datetime.now(UTC)
    p = event.payload
    kind = event.eventType
    if kind not in (
        CHANNEL_DESTROY,
        HOST_JOIN,
        HOST_LEAVE,
        AUDIENCE_JOIN,
        AUDIENCE_LEAVE,
        BECAME_HOST,
        BECAME_AUDIENCE,
    ):
        return WebhookAck(applied=0)
    stream = queries.lock_live_by_channel(conn, p.channelName)
    if stream is None:  # a call's channel, an ended stream, or someone else's: nothing to do
        return WebhookAck(applied=0)
    at = datetime.fromtimestamp(p.ts, UTC)
    timeout = timedelta(seconds=HOST_TIMEOUT_S)
    if kind == CHANNEL_DESTROY:  # everyone has left
        queries.clear_audience(conn, stream["id"], at=at)
        schedule_check(conn, stream["id"], at + timeout, now)
        _recount(conn, stream, now=now)
        return WebhookAck(applied=1)
    if p.uid is None:
        raise BadRequest("This Agora event needs payload.uid", code="INVALID_WEBHOOK_BODY")
    if p.uid == stream["host_uid"]:
        if kind in (AUDIENCE_JOIN, AUDIENCE_LEAVE):
            return WebhookAck(applied=0)  # the host watching from another device says nothing about hosting
        # The host is present while in the channel as broadcaster.
        present = kind in (HOST_JOIN, BECAME_HOST)
        applied = queries.set_host_presence(conn, stream["id"], present=present, at=at, seq=p.clientSeq)
        if applied and not present:
            schedule_check(conn, stream["id"], at + timeout, now)
        return WebhookAck(applied=int(applied))
    # Anyone else is watching while in the channel as audience (a co-host broadcasting is not audience).
    watching = kind in (AUDIENCE_JOIN, BECAME_AUDIENCE)
    applied = queries.set_audience_member(conn, stream["id"], p.uid, present=watching, at=at, seq=p.clientSeq)
    if applied:
        _recount(conn, stream, now=now)
    return WebhookAck(applied=int(applied))


def apply_pusher(conn: Conn, webhook: PusherWebhook, *, now: datetime | None = None) -> WebhookAck:
    """Apply a Pusher webhook's events for stream channels, in order; others are acknowledged and ignored."""
    now = now or datetime.now(UTC)
    applied = 0
    for event in webhook.events:
        if not event.channel.startswith(realtime.STREAM_PREFIX):
            continue
        if event.name == "subscription_count" and event.subscription_count is not None:
            size: int | None = event.subscription_count
        elif event.name == "channel_vacated":
            size = 0
        elif event.name == "channel_occupied":
            size = None  # at least one: decided below against the stored count
        else:
            continue
        stream = queries.lock_live_by_channel(conn, event.channel.removeprefix(realtime.STREAM_PREFIX))
        if stream is None or webhook.time_ms < stream["pusher_count_ms"]:
            continue  # not a live stream, or older than the count already stored
        if size is None:
            size = max(1, stream["pusher_subscribers"])
        _recount(conn, stream, now=now, pusher=size, pusher_ms=webhook.time_ms)
        applied += 1
    return WebhookAck(applied=applied)

"""Event payloads of calls, money and streams: TypedDicts and the builders that fill them."""

from datetime import datetime
from typing import NotRequired, TypedDict
from uuid import UUID

__all__ = [
    "BalanceUpdate",
    "CallRequest",
    "CallState",
    "InsufficientFunds",
    "MinuteBilled",
    "SessionDue",
    "SessionUpdated",
    "StreamEnded",
    "StreamGift",
    "StreamTip",
    "TipReceived",
    "ViewerCount",
    "balance_update",
    "call_request",
    "call_state",
    "insufficient_funds",
    "minute_billed",
    "session_due",
    "session_updated",
    "stream_ended",
    "stream_gift",
    "stream_tip",
    "tip_received",
    "viewer_count",
]


# Payloads: keys are camelCase exactly as API.md; ids are strings, timestamps ISO 8601, tokens integers.


class CallRequest(TypedDict):
    """`call:request` on the callee's user channel."""

    callId: str
    channel: str
    callType: str
    fanId: str
    creatorId: str
    rate: int
    fanName: str
    creatorName: str
    expiresAt: str


class CallState(TypedDict):
    """`call:accepted|rejected|cancelled|ended` on user channels, `call:ended` on the call channel."""

    callId: str
    channel: str
    state: str
    endReason: NotRequired[str]


class BalanceUpdate(TypedDict):
    """`balance:update` on the user's channel."""

    balance: int
    delta: int
    reason: str


class TipReceived(TypedDict):
    """`tip:received` on the creator's user channel."""

    tipId: str
    amountTokens: int
    fromUserId: str
    fromUsername: str


class MinuteBilled(TypedDict):
    """`call:minute_billed` on the call channel."""

    callId: str
    minute: int
    fanBalance: int


class InsufficientFunds(TypedDict):
    """`call:insufficient_funds` on the call channel."""

    callId: str
    minuteBilled: int
    fanBalance: int
    tokensNeeded: int


class SessionUpdated(TypedDict):
    """`session:updated` on both parties' user channels: a scheduled call was requested, answered or moved."""

    requestId: str
    status: str
    requestType: str
    callType: str
    fanId: str
    creatorId: str
    scheduledAt: str
    byUserId: str | None


class SessionDue(TypedDict):
    """`session:due` on both parties' user channels: a scheduled call's time came and it is ringing now."""

    requestId: str
    callId: str
    channel: str
    callType: str
    fanId: str
    creatorId: str
    rate: int
    scheduledAt: str


class StreamTip(TypedDict):
    """`tip-received` on the stream's channel (the stream pages read channel, amount, sender, message)."""

    tipId: str
    streamId: str
    channel: str  # the stream's Agora channel, which the pages compare with their own
    amount: int
    amountTokens: int
    sender: str  # display name
    fromUsername: str
    message: str | None


class StreamGift(TypedDict):
    """`gift-received` on the stream's channel (the pages read channel, quantity, totalValue, emoji, sender)."""

    giftId: str
    streamId: str
    channel: str
    giftType: str
    name: str
    emoji: str
    rarity: str
    quantity: int
    unitCost: int
    totalValue: int  # tokens: unitCost x quantity
    amount: int  # the same, for handlers that read `amount`
    sender: str
    fromUsername: str


class StreamEnded(TypedDict):
    """`stream-ended` on the stream's channel (the pages compare `channel`; profiles compare `creatorId`)."""

    streamId: str
    channel: str
    creatorId: str


class ViewerCount(TypedDict):
    """`viewer-count` on the stream's channel (StreamingLayout reads channel or streamId, and count)."""

    streamId: str
    channel: str
    count: int


def _iso(value: datetime) -> str:
    return value.isoformat()


def call_request(
    *,
    call_id: UUID,
    channel: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    rate: int,
    fan_name: str,
    creator_name: str,
    expires_at: datetime,
) -> CallRequest:
    """Payload of `call:request`."""
    return CallRequest(
        callId=str(call_id),
        channel=channel,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        rate=rate,
        fanName=fan_name,
        creatorName=creator_name,
        expiresAt=_iso(expires_at),
    )


def call_state(*, call_id: UUID, channel: str, state: str, end_reason: str | None = None) -> CallState:
    """Payload of `call:accepted`, `call:rejected`, `call:cancelled` and `call:ended`."""
    payload = CallState(callId=str(call_id), channel=channel, state=state)
    if end_reason is not None:
        payload["endReason"] = end_reason
    return payload


def balance_update(*, balance: int, delta: int, reason: str) -> BalanceUpdate:
    """Payload of `balance:update`."""
    return BalanceUpdate(balance=balance, delta=delta, reason=reason)


def tip_received(*, tip_id: UUID, amount_tokens: int, from_user_id: UUID, from_username: str) -> TipReceived:
    """Payload of `tip:received`."""
    return TipReceived(
        tipId=str(tip_id),
        amountTokens=amount_tokens,
        fromUserId=str(from_user_id),
        fromUsername=from_username,
    )


def minute_billed(*, call_id: UUID, minute: int, fan_balance: int) -> MinuteBilled:
    """Payload of `call:minute_billed`."""
    return MinuteBilled(callId=str(call_id), minute=minute, fanBalance=fan_balance)


def insufficient_funds(
    *, call_id: UUID, minute_billed: int, fan_balance: int, tokens_needed: int
) -> InsufficientFunds:
    """Payload of `call:insufficient_funds`."""
    return InsufficientFunds(
        callId=str(call_id), minuteBilled=minute_billed, fanBalance=fan_balance, tokensNeeded=tokens_needed
    )


def session_updated(
    *,
    request_id: UUID,
    status: str,
    request_type: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    scheduled_at: datetime,
    by_user_id: UUID | None,
) -> SessionUpdated:
    """Payload of `session:updated`."""
    return SessionUpdated(
        requestId=str(request_id),
        status=status,
        requestType=request_type,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        scheduledAt=_iso(scheduled_at),
        byUserId=str(by_user_id) if by_user_id else None,
    )


def session_due(
    *,
    request_id: UUID,
    call_id: UUID,
    channel: str,
    call_type: str,
    fan_id: UUID,
    creator_id: UUID,
    rate: int,
    scheduled_at: datetime,
) -> SessionDue:
    """Payload of `session:due`."""
    return SessionDue(
        requestId=str(request_id),
        callId=str(call_id),
        channel=channel,
        callType=call_type,
        fanId=str(fan_id),
        creatorId=str(creator_id),
        rate=rate,
        scheduledAt=_iso(scheduled_at),
    )


def stream_tip(
    *,
    tip_id: UUID,
    stream_id: UUID,
    channel: str,
    amount_tokens: int,
    sender: str,
    from_username: str,
    message: str | None,
) -> StreamTip:
    """Payload of `tip-received`."""
    return StreamTip(
        tipId=str(tip_id),
        streamId=str(stream_id),
        channel=channel,
        amount=amount_tokens,
        amountTokens=amount_tokens,
        sender=sender,
        fromUsername=from_username,
        message=message,
    )


def stream_gift(
    *,
    gift_id: UUID,
    stream_id: UUID,
    channel: str,
    gift_type: str,
    name: str,
    emoji: str,
    rarity: str,
    quantity: int,
    unit_cost: int,
    sender: str,
    from_username: str,
) -> StreamGift:
    """Payload of `gift-received`."""
    return StreamGift(
        giftId=str(gift_id),
        streamId=str(stream_id),
        channel=channel,
        giftType=gift_type,
        name=name,
        emoji=emoji,
        rarity=rarity,
        quantity=quantity,
        unitCost=unit_cost,
        totalValue=unit_cost * quantity,
        amount=unit_cost * quantity,
        sender=sender,
        fromUsername=from_username,
    )


def stream_ended(*, stream_id: UUID, channel: str, creator_id: UUID) -> StreamEnded:
    """Payload of `stream-ended`."""
    return StreamEnded(streamId=str(stream_id), channel=channel, creatorId=str(creator_id))


def viewer_count(*, stream_id: UUID, channel: str, count: int) -> ViewerCount:
    """Payload of `viewer-count`."""
    return ViewerCount(streamId=str(stream_id), channel=channel, count=count)

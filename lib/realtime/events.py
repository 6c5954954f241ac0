"""Every realtime event: its name, the channels that carry it and its payload (publish() refuses anything else)."""

import enum
from dataclasses import dataclass
from typing import Any

from lib.realtime.channels import CALL_PREFIX, STREAM_PREFIX, USER_PREFIX
from lib.realtime.payloads import (
    BalanceUpdate,
    CallRequest,
    CallState,
    InsufficientFunds,
    MinuteBilled,
    SessionDue,
    SessionUpdated,
    StreamEnded,
    StreamGift,
    StreamTip,
    TipReceived,
    ViewerCount,
)


class Event(enum.StrEnum):
    """Every event name the frontend listens for (API.md, Realtime)."""

    CALL_REQUEST = "call:request"
    CALL_ACCEPTED = "call:accepted"
    CALL_REJECTED = "call:rejected"
    CALL_CANCELLED = "call:cancelled"
    CALL_ENDED = "call:ended"
    BALANCE_UPDATE = "balance:update"
    TIP_RECEIVED = "tip:received"
    CALL_MINUTE_BILLED = "call:minute_billed"
    CALL_INSUFFICIENT_FUNDS = "call:insufficient_funds"
    SESSION_UPDATED = "session:updated"
    SESSION_DUE = "session:due"
    STREAM_TIP = "tip-received"
    STREAM_GIFT = "gift-received"
    STREAM_ENDED = "stream-ended"
    VIEWER_COUNT = "viewer-count"


@dataclass(frozen=True)
class _Spec:
    prefixes: tuple[str, ...]
    payload: Any  # the TypedDict class

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.payload.__required_keys__)

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | frozenset(self.payload.__optional_keys__)


# Which channels carry which event, with which payload: publish() refuses anything else.
EVENTS: dict[Event, _Spec] = {
    Event.CALL_REQUEST: _Spec((USER_PREFIX,), CallRequest),
    Event.CALL_ACCEPTED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_REJECTED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_CANCELLED: _Spec((USER_PREFIX,), CallState),
    Event.CALL_ENDED: _Spec((USER_PREFIX, CALL_PREFIX), CallState),
    Event.BALANCE_UPDATE: _Spec((USER_PREFIX,), BalanceUpdate),
    Event.TIP_RECEIVED: _Spec((USER_PREFIX,), TipReceived),
    Event.CALL_MINUTE_BILLED: _Spec((CALL_PREFIX,), MinuteBilled),
    Event.CALL_INSUFFICIENT_FUNDS: _Spec((CALL_PREFIX,), InsufficientFunds),
    Event.SESSION_UPDATED: _Spec((USER_PREFIX,), SessionUpdated),
    Event.SESSION_DUE: _Spec((USER_PREFIX,), SessionDue),
    Event.STREAM_TIP: _Spec((STREAM_PREFIX,), StreamTip),
    Event.STREAM_GIFT: _Spec((STREAM_PREFIX,), StreamGift),
    Event.STREAM_ENDED: _Spec((STREAM_PREFIX,), StreamEnded),
    Event.VIEWER_COUNT: _Spec((STREAM_PREFIX,), ViewerCount),
}

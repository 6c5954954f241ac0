"""Calls: the row as lib sees it, and the response bodies the frontend reads (camelCase, as API.md names them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

CallType = Literal["video", "voice"]
State = Literal["ringing", "active", "ended", "declined", "cancelled", "missed"]
LIVE_STATES: tuple[State, ...] = ("ringing", "active")
EndReason = Literal["hangup", "insufficient_funds", "heartbeat_timeout", "declined", "cancelled", "no_answer"]


class Call(BaseModel):
    """One row of call_sessions."""

    id: UUID
    fan_id: UUID
    creator_id: UUID
    initiated_by: UUID
    call_type: CallType
    state: State
    channel: str
    rate_per_minute: int
    message: str | None
    created_at: datetime
    ring_expires_at: datetime
    connected_at: datetime | None
    ended_at: datetime | None
    end_reason: EndReason | None
    ended_by: UUID | None
    last_billed_minute: int
    total_cost: int
    fan_last_seen_at: datetime | None
    creator_last_seen_at: datetime | None

    @property
    def caller_id(self) -> UUID:
        """Who placed the call."""
        return self.initiated_by

    @property
    def callee_id(self) -> UUID:
        """Who is asked to answer."""
        return self.creator_id if self.initiated_by == self.fan_id else self.fan_id

    def has_party(self, user_id: UUID) -> bool:
        """Whether the user is one of the two participants."""
        return user_id in (self.fan_id, self.creator_id)

    @property
    def is_live(self) -> bool:
        """Ringing or active."""
        return self.state in LIVE_STATES

    @property
    def duration_seconds(self) -> int:
        """Connected time, once ended (0 for a call that never connected)."""
        if self.connected_at is None or self.ended_at is None:
            return 0
        return max(0, int((self.ended_at - self.connected_at).total_seconds()))


class CallCreate(BaseModel):
    """POST /calls/request body."""

    creatorId: UUID
    callType: CallType = "video"


class CallInvite(BaseModel):
    """POST /calls/initiate body."""

    fanId: UUID
    callType: CallType = "video"
    message: str | None = Field(default=None, max_length=500)


class CallRinging(BaseModel):
    """A call just placed: POST /calls/request and /calls/initiate."""

    callId: UUID
    channel: str
    state: State
    callType: CallType
    ratePerMinute: int
    expiresAt: datetime


class JoinInfo(BaseModel):
    """What a participant needs to join the media channel (POST /calls/{id}/accept)."""

    callId: UUID
    channel: str
    appId: str
    token: str
    uid: int
    callType: CallType
    ratePerMinute: int
    expiresIn: int
    expiresAt: datetime


class Billing(BaseModel):
    """Where a call's billing stands."""

    elapsedSeconds: int
    currentMinute: int
    lastBilledMinute: int
    tokensPerMinute: int
    nextBillingIn: int | None
    totalCost: int


class Heartbeat(BaseModel):
    """POST /calls/{id}/heartbeat: always 200 for a participant; `state` says whether the call goes on."""

    callId: UUID
    state: State
    endReason: EndReason | None
    billing: Billing


class Summary(BaseModel):
    """POST /calls/{id}/end (idempotent)."""

    callId: UUID
    state: State
    durationSeconds: int
    durationMinutes: int
    totalCost: int
    endedBy: UUID | None
    endReason: EndReason | None


class Party(BaseModel):
    """The other participant, as a call list shows them."""

    id: UUID
    username: str
    displayName: str | None
    profilePicUrl: str | None


class CallView(BaseModel):
    """One call as a participant sees it (status, pending, history)."""

    callId: UUID
    callType: CallType
    state: State
    channel: str
    fanId: UUID
    creatorId: UUID
    initiatedBy: UUID
    direction: Literal["incoming", "outgoing"]
    ratePerMinute: int
    message: str | None
    createdAt: datetime
    expiresAt: datetime
    connectedAt: datetime | None
    endedAt: datetime | None
    durationSeconds: int
    durationMinutes: int
    totalCost: int
    endReason: EndReason | None
    endedBy: UUID | None
    otherParty: Party | None = None


class PendingCalls(BaseModel):
    """GET /calls/pending: ringing calls I am in, newest first."""

    calls: list[CallView]


class CallHistory(BaseModel):
    """GET /calls/history: my calls, newest first, paged."""

    calls: list[CallView]
    total: int
    limit: int
    offset: int
    hasMore: bool


class AgoraToken(BaseModel):
    """GET /agora/token."""

    rtcToken: str
    token: str
    channel: str
    uid: int
    role: Literal["host", "audience"]
    appId: str
    expiresAt: datetime
    expiresIn: int

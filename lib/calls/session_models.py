"""Calls under the frontend's `/sessions/*` paths: the bodies its pages send and the fields they read (snake_case).

CallConfirmationModal, CallRequestModal, CallRequestsModal, pages/CallRequestsPage, pages/SchedulePage,
EnhancedScheduleCalendar and HybridCreatorDashboard (frontend/src/components, digisapp/digis-app da41f3b).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from lib.calls.models import CallType, JoinInfo, State

RequestType = Literal["call_request", "session_request", "session_invite"]
# What /sessions/requests shows: a booking's own status, or its call's (pending = ringing, accepted = ringing at
# its scheduled time or connected, completed = ended, missed = rang out).
Status = Literal["pending", "accepted", "declined", "cancelled", "expired", "missed", "completed"]
STATUSES: tuple[str, ...] = ("pending", "accepted", "declined", "cancelled", "expired", "missed", "completed")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Slot(_Body):
    """When a scheduled call rings: a date and time as the user picked them (in `timezone`, UTC if absent), or an
    ISO 8601 instant with its offset (`scheduled_at`, which wins)."""

    scheduled_date: date | None = None
    scheduled_time: time | None = None
    scheduled_at: AwareDatetime | None = None
    timezone: str | None = Field(default=None, max_length=64)

    @property
    def is_scheduled(self) -> bool:
        """A date and a time (or an instant) make a scheduled call; neither is an instant one."""
        return (
            self.scheduled_at is not None
            or self.scheduled_date is not None
            or self.scheduled_time is not None
        )


class SessionRequestIn(Slot):
    """POST /sessions/request: CallConfirmationModal.js:130 sends {creatorId, creatorUsername, serviceType, price}."""

    creatorId: UUID
    creatorUsername: str | None = Field(default=None, max_length=64)
    serviceType: CallType = "video"
    price: StrictInt | None = Field(default=None, ge=0)  # the per-minute price the fan was shown
    duration_minutes: StrictInt = Field(default=30, ge=1, le=480)
    message: str | None = Field(default=None, max_length=500)


class CreateInviteIn(Slot):
    """POST /sessions/create-invite: CallRequestModal.js:76 (`fan_id` is the other party: the creator asked, when
    a fan sends it from a creator's card; the fan invited, when a creator sends it)."""

    fan_id: UUID
    creator_username: str | None = Field(default=None, max_length=64)
    type: CallType = "video"
    duration_minutes: StrictInt = Field(default=30, ge=1, le=480)
    rate_per_min: StrictInt | None = Field(default=None, ge=0)
    message: str | None = Field(default=None, max_length=500)
    scheduled: StrictBool | None = None


class AcceptIn(_Body):
    """POST /sessions/requests/{id}/accept: CallRequestsModal echoes the request's date and time (ignored)."""

    scheduled_date: str | None = Field(default=None, max_length=32)
    scheduled_time: str | None = Field(default=None, max_length=32)


class ReasonIn(_Body):
    """POST /sessions/requests/{id}/decline|cancel, /sessions/invites/{id}/decline: {reason}."""

    reason: str | None = Field(default=None, max_length=500)


class RescheduleIn(_Body):
    """POST /sessions/requests/{id}/reschedule: CallRequestsPage.js:334 sends {new_date, new_time, message}."""

    new_date: date | None = None
    new_time: time | None = None
    new_scheduled_at: AwareDatetime | None = None
    timezone: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=500)

    def slot(self) -> Slot:
        """The new time as a Slot."""
        return Slot(
            scheduled_date=self.new_date,
            scheduled_time=self.new_time,
            scheduled_at=self.new_scheduled_at,
            timezone=self.timezone,
        )


class RequestItem(BaseModel):
    """One entry of GET /sessions/requests (CallRequestsModal.js:330-430, CallRequestsPage.js:155-178)."""

    id: UUID  # the call's id for an instant request, the booking's for a scheduled one
    request_type: RequestType
    status: Status
    type: CallType
    call_type: CallType
    direction: Literal["incoming", "outgoing"]
    can_respond: bool  # whether I am the one who accepts or declines it
    fan_id: UUID
    fan_username: str
    fan_name: str
    fan_profile_pic: str | None
    creator_id: UUID
    creator_username: str
    creator_name: str
    creator_profile_pic: str | None
    duration_minutes: int | None
    estimated_duration: int | None
    price_per_minute: int
    rate_per_min: int
    offering_tokens: int
    scheduled_date: str | None  # "YYYY-MM-DD" as picked, null for an instant request
    scheduled_time: str | None  # "HH:MM" as picked
    scheduled_at: datetime | None
    time_zone: str | None
    message: str | None
    reason: str | None
    urgency: Literal["normal"]
    created_at: datetime
    expires_at: datetime | None
    accepted_at: datetime | None
    call_id: UUID | None
    call_state: State | None
    channel: str | None


class RequestList(BaseModel):
    """GET /sessions/requests?status=: my call requests, incoming and outgoing, newest first."""

    requests: list[RequestItem]
    total: int
    limit: int
    offset: int
    hasMore: bool


class SessionRequested(BaseModel):
    """POST /sessions/request: CallConfirmationModal reads sessionId and requestId."""

    success: bool
    sessionId: UUID
    requestId: UUID
    scheduled: bool
    status: Status
    callId: UUID | None
    channel: str | None
    state: State | None
    callType: CallType
    ratePerMinute: int
    expiresAt: datetime | None
    scheduledAt: datetime | None
    request: RequestItem


class InviteCreated(BaseModel):
    """POST /sessions/create-invite: CallRequestModal reads invite.id."""

    success: bool
    invite: RequestItem
    request: RequestItem


class RequestAction(BaseModel):
    """POST /sessions/requests|invites/{id}/accept|decline|cancel|reschedule (CallRequestsModal reads `session`).

    `call` is the media join information when accepting made a ringing call connect (minute 1 charged).
    """

    success: bool
    request: RequestItem
    session: RequestItem
    call: JoinInfo | None = None


class SessionItem(BaseModel):
    """A scheduled call on a calendar: EnhancedScheduleCalendar.js:118-129, HybridCreatorDashboard.js:1044-1290."""

    id: UUID
    request_id: UUID
    type: str  # /sessions/scheduled: "video-call" | "voice-call"; /sessions/upcoming: "video" | "voice"
    call_type: CallType
    title: str
    status: Status
    direction: Literal["incoming", "outgoing"]
    fan_id: UUID
    fan_name: str
    fan_username: str
    creator_id: UUID
    creator_name: str
    creator_username: str
    username: str  # the other party's
    scheduled_at: datetime
    scheduled_time: datetime  # the calendar does `new Date(session.scheduled_time)`: an instant, not "HH:MM"
    scheduled_date: str
    date: datetime
    time: datetime
    duration: int
    duration_minutes: int
    tokens: int
    rate_per_min: int
    participants: list[str]
    call_id: UUID | None


class SessionList(BaseModel):
    """GET /sessions/scheduled, GET /sessions/upcoming."""

    sessions: list[SessionItem]


class RingResult(BaseModel):
    """POST /jobs/ring-scheduled-call's answer (QStash only needs the 2xx; this is for logs and tests)."""

    requestId: UUID
    version: int
    status: str  # rung | stale | not_due | busy | expired | not_found | duplicate_delivery
    callId: UUID | None = None

"""Streams: the row as lib sees it, and the bodies the frontend sends and reads (field names as API.md has them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

Status = Literal["live", "ended"]
EndReason = Literal["host", "heartbeat_timeout"]
Role = Literal["host", "viewer"]


class Stream(BaseModel):
    """One row of streams, with its creator's username."""

    id: UUID
    creator_id: UUID
    creator_username: str
    channel: str
    title: str
    category: str | None
    description: str | None
    status: Status
    started_at: datetime
    ended_at: datetime | None
    end_reason: EndReason | None
    last_heartbeat_at: datetime
    viewer_count: int
    peak_viewers: int
    tips_tokens: int
    host_in_channel: bool = False
    host_lease_until: datetime | None = None
    agora_audience: int = 0
    pusher_subscribers: int = 0

    @property
    def is_live(self) -> bool:
        """Not ended yet."""
        return self.status == "live"

    @property
    def duration_seconds(self) -> int:
        """Whole seconds on air (so far, for a live stream: until its last host heartbeat)."""
        end = self.ended_at or self.last_heartbeat_at
        return max(0, int((end - self.started_at).total_seconds()))


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class GoLive(BaseModel):
    """POST /streaming/go-live body (GoLivePage.js); the other keys it sends (privacy, streamGoal, ...) are ignored."""

    title: Title
    category: Category | None = None
    description: Description | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = []


# ---- responses -----------------------------------------------------------------------------------------------


class LiveStream(BaseModel):
    """`stream` of the go-live answer."""

    id: UUID
    channel: str
    title: str
    status: Status
    startedAt: datetime


class HostAgora(BaseModel):
    """`agora` of the go-live answer: what the host joins the channel with."""

    appId: str
    token: str
    channel: str
    uid: int
    role: Literal["host"] = "host"
    expiresAt: datetime


class GoLiveAnswer(BaseModel):
    """POST /streaming/go-live."""

    stream: LiveStream
    agora: HostAgora


class EndedStream(BaseModel):
    """`stream` of the end-stream answer."""

    id: UUID
    durationSeconds: int
    peakViewers: int
    tipsTokens: int


class EndAnswer(BaseModel):
    """POST /streaming/end-stream/{id}."""

    stream: EndedStream


class JoinedStream(BaseModel):
    """`stream` of the join answer (StreamPage.js reads channel_name, title, category, description, creator_id)."""

    id: UUID
    channel: str
    channel_name: str  # the same channel: the page joins Agora with `channel_name`
    title: str
    category: str | None
    description: str | None
    creator_id: UUID
    creator_username: str
    status: Status
    viewer_count: int
    started_at: datetime


class JoinAnswer(BaseModel):
    """GET /streaming/stream/{channel, id or creator username}: an audience token for the viewer."""

    stream: JoinedStream
    agoraToken: str
    chatToken: str | None = None  # no chat tokens here: stream chat is Supabase Realtime
    uid: int


class StreamPulse(BaseModel):
    """`stream` of the heartbeat and leave answers."""

    id: UUID
    status: Status
    viewerCount: int


class HeartbeatAnswer(BaseModel):
    """POST /streaming/stream/{channel-or-id}/heartbeat: who I am to the stream and when to beat next."""

    stream: StreamPulse
    role: Role
    nextHeartbeatIn: int


class LeaveAnswer(BaseModel):
    """POST /streaming/stream/{channel-or-id}/leave."""

    stream: StreamPulse


class DirectoryEntry(BaseModel):
    """One live stream in the public directory (never the creator's email)."""

    id: UUID
    channel: str
    creator_id: UUID
    creator_username: str
    creator_name: str
    creator_avatar: str | None
    title: str
    category: str | None
    viewer_count: int
    started_at: datetime
    is_live: bool = True
    is_free: bool = True  # no paid streams here: every live stream is free to watch
    thumbnail: str | None  # the creator's banner, else their avatar (no stream snapshots are taken)
    tags: list[str]
    likes: int = 0  # no likes feature: always 0
    tips: int  # tokens tipped during the stream


class Directory(BaseModel):
    """GET /streaming/public/streams/live: most watched first."""

    streams: list[DirectoryEntry]
    total: int
    limit: int
    offset: int
    hasMore: bool


class UpcomingEntry(BaseModel):
    """One scheduled stream (TVPage.js reads these keys)."""

    id: UUID
    creator_id: UUID
    creator_username: str
    creator_name: str
    title: str
    description: str | None
    scheduled_time: datetime
    category: str | None
    expected_duration: int  # minutes
    tags: list[str]


class Upcoming(BaseModel):
    """GET /public/streams/upcoming: streams can't be scheduled yet, so this list is empty (the TV page's shape)."""

    streams: list[UpcomingEntry]
    total: int


class WebhookAck(BaseModel):
    """What the Agora and Pusher webhooks answer (Agora wants a JSON body with its 200)."""

    ok: bool = True
    applied: int  # events that changed something (0: unknown channel, stale or repeated event)


class CheckResult(BaseModel):
    """POST /jobs/check-stream: whether the stream ended, and when the next check runs if it is still live."""

    streamId: UUID
    status: Status | None
    ended: bool
    nextCheckIn: int | None

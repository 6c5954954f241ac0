"""Streams: the row as lib sees it, and the bodies the frontend sends and reads (field names as API.md has them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, StringConstraints

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


class GoLive(BaseModel):
    """POST /streaming/go-live body; other keys the frontend sends (tags, privacy, ...) are ignored."""

    title: Title
    category: Category | None = None
    description: Description | None = None


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
    """`stream` of the join answer."""

    id: UUID
    channel: str
    title: str
    creator_id: UUID
    creator_username: str


class JoinAnswer(BaseModel):
    """GET /streaming/stream/{channel-or-id}: an audience token for the viewer."""

    stream: JoinedStream
    agoraToken: str
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


class Directory(BaseModel):
    """GET /streaming/public/streams/live: most watched first."""

    streams: list[DirectoryEntry]
    total: int
    limit: int
    offset: int
    hasMore: bool

"""Classes: the bodies the frontend sends and the fields its pages read.

ClassScheduler.js (POST /classes), pages/ClassesPage.js (list, join, start-stream), StreamingLayout.js
(mark-attendance), ClassReviews.js / ClassReviewModal.js (reviews), pages/SchedulePage.js (enrolled|hosting/{id});
frontend/src/components of digisapp/digis-app da41f3b. camelCase for the classes page, snake_case mirrors for the
schedule page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from lib.streams.models import GoLiveAnswer

Status = Literal["scheduled", "live", "ended", "cancelled"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
MAX_COVER_URL = 2048


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ClassIn(_Body):
    """POST /classes: ClassScheduler.js:159 (its `creator`, `currentParticipants` and `isLive` are ignored)."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Text | None = None
    category: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    startTime: AwareDatetime
    duration: StrictInt = Field(default=60, ge=5, le=600)
    maxParticipants: StrictInt = Field(default=20, ge=1, le=10000)
    tokenPrice: StrictInt = Field(ge=0, le=1_000_000)
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    requirements: Text | None = None
    whatToExpect: Text | None = None
    coverImage: str | None = Field(default=None, max_length=MAX_COVER_URL)

    @field_validator("coverImage")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        """An image URL (the upload route answers one); only https, so pages never load mixed or script content."""
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith("https://") or any(c.isspace() for c in value) or "\\" in value:
            raise ValueError("coverImage must be an https URL")
        return value


class JoinIn(_Body):
    """POST /classes/{id}/join: ClassesPage.js:163 sends {userId, classId} (the token's user joins; both ignored)."""

    userId: str | None = None
    classId: str | None = None


class ReviewIn(_Body):
    """POST /classes/{id}/reviews: ClassReviewModal.js:49 (userName/userAvatar come from the profile, not here)."""

    rating: StrictInt = Field(ge=1, le=5)
    review: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Host(BaseModel):
    """`creator` of a class card: ClassesPage reads id, displayName, rating."""

    id: UUID
    username: str
    displayName: str
    avatar: str | None
    rating: float
    reviewCount: int


class ClassOut(BaseModel):
    """One class: ClassesPage (camelCase) and SchedulePage (snake_case) read these."""

    id: UUID
    title: str
    description: str | None
    category: str | None
    tags: list[str]
    requirements: str | None
    whatToExpect: str | None
    coverImage: str | None
    startTime: datetime
    duration: int
    maxParticipants: int
    currentParticipants: int
    tokenPrice: int
    status: Status
    isLive: bool
    streamId: UUID | None
    channel: str | None
    creator: Host
    # SchedulePage.js:192-233
    creator_id: UUID
    creator_name: str
    scheduled_at: datetime
    scheduled_date: str  # YYYY-MM-DD, UTC
    scheduled_time: str  # HH:MM, UTC
    duration_minutes: int
    max_participants: int
    enrolled_count: int
    price: int
    # Mine, when the request is signed in
    isEnrolled: bool = False
    hasPaid: bool = False
    hasAttended: bool = False


class ClassList(BaseModel):
    """GET /classes?startDate&endDate, /classes/enrolled/{userId}, /classes/hosting/{userId}."""

    classes: list[ClassOut]


class EnrolledList(BaseModel):
    """GET /classes/enrolled: ClassesPage reads enrolledClassIds."""

    classes: list[ClassOut]
    enrolledClassIds: list[UUID]


class ClassCreated(BaseModel):
    """POST /classes: ClassScheduler reads `class`."""

    model_config = ConfigDict(populate_by_name=True)

    success: bool
    class_: ClassOut = Field(alias="class", serialization_alias="class")


class Joined(BaseModel):
    """POST /classes/{id}/join: the seat is taken; tokens are charged when attending the live class."""

    success: bool
    enrolled: bool
    alreadyEnrolled: bool
    classId: UUID
    tokenPrice: int
    currentParticipants: int
    maxParticipants: int


class StreamStarted(BaseModel):
    """POST /classes/{id}/start-stream: the class's live stream (host token when it was started by this call)."""

    success: bool
    classId: UUID
    streamId: UUID
    channel: str
    alreadyLive: bool
    stream: GoLiveAnswer | None = None


class Attendance(BaseModel):
    """POST /classes/{id}/mark-attendance: StreamingLayout reads alreadyPaid and tokensPaid."""

    success: bool
    alreadyPaid: bool
    tokensPaid: int
    balance: int
    new_balance: int
    classId: UUID


class ReviewOut(BaseModel):
    """One review: ClassReviews reads id, rating, review, userName, userAvatar, createdAt, helpful."""

    id: UUID
    rating: int
    review: str
    userId: UUID
    userName: str
    userAvatar: str | None
    createdAt: datetime
    helpful: int = 0


class ReviewStats(BaseModel):
    """ClassReviews reads averageRating, totalReviews, ratingDistribution[1..5]."""

    averageRating: float
    totalReviews: int
    ratingDistribution: dict[str, int]


class Reviews(BaseModel):
    """GET /classes/{id}/reviews."""

    reviews: list[ReviewOut]
    stats: ReviewStats


class ReviewPosted(BaseModel):
    """POST /classes/{id}/reviews: ClassReviewModal reads `review`."""

    success: bool
    review: ReviewOut
    stats: ReviewStats

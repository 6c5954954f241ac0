"""Creators: the public directory and profile, per-minute rates, follows, and applications to become one."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from lib import presence
from lib.db import Conn
from lib.errors import BadRequest, Conflict, NotFound, Unprocessable
from lib.users import MAX_RATE, MIN_RATE, User

SortBy = Literal["newest", "created_at", "popular", "online", "price_low", "price-low", "price_high", "price-high",
                 "username"]  # fmt: skip

# Every order ends on a unique key, so pages never repeat or skip a creator.
_ORDER = {
    "newest": "u.created_at DESC, u.id DESC",
    "popular": "followers DESC, u.created_at DESC, u.id DESC",
    "online": "(u.id = ANY(%(online)s::uuid[])) DESC, u.created_at DESC, u.id DESC",
    "price_low": "u.video_price ASC NULLS LAST, u.id ASC",
    "price_high": "u.video_price DESC NULLS LAST, u.id ASC",
    "username": "u.username ASC",
}
_SORT_ALIASES = {"created_at": "newest", "price-low": "price_low", "price-high": "price_high"}
_DIRECTORY_WHERE = """u.is_creator AND u.role <> 'system'
    AND (%(category)s::text IS NULL OR lower(u.creator_type) = lower(%(category)s::text))
    AND (NOT %(online_only)s OR u.id = ANY(%(online)s::uuid[]))"""


def directory(
    conn: Conn,
    *,
    limit: int,
    offset: int,
    category: str | None = None,
    online_only: bool = False,
    sort_by: SortBy = "newest",
) -> dict[str, Any]:
    """GET /users/creators: a page of creators with is_online (Redis heartbeat) and is_live (streams)."""
    sort = _SORT_ALIASES.get(sort_by, sort_by)
    category = category.strip() if category and category.strip().lower() not in ("", "all") else None
    online: list[UUID] = []
    if online_only or sort == "online":
        online = presence.online_creator_ids() or []  # Redis down: nobody is known to be online
    params = {
        "category": category,
        "online_only": online_only,
        "online": online,
        "limit": limit,
        "offset": offset,
    }
    followers = (
        "LEFT JOIN LATERAL (SELECT count(*) AS followers FROM follows f WHERE f.creator_id = u.id) fc ON true"
        if sort == "popular"
        else ""
    )
    page_query = sql.SQL(
        """SELECT u.id, u.username, u.display_name, u.profile_pic_url, u.bio, u.creator_type,
                  u.video_price, u.voice_price,
                  EXISTS (SELECT 1 FROM streams s WHERE s.creator_id = u.id AND s.status = 'live') AS is_live
           FROM users u {followers}
           WHERE {where}
           ORDER BY {order}
           LIMIT %(limit)s OFFSET %(offset)s"""
    ).format(followers=sql.SQL(followers), where=sql.SQL(_DIRECTORY_WHERE), order=sql.SQL(_ORDER[sort]))
    rows = conn.execute(page_query, params).fetchall()
    count_query = sql.SQL("SELECT count(*) AS n FROM users u WHERE {where}").format(
        where=sql.SQL(_DIRECTORY_WHERE)
    )
    counted = conn.execute(count_query, params).fetchone()
    total = counted["n"] if counted else 0
    live_now = presence.online_among(r["id"] for r in rows)
    creators = [{**r, "is_online": r["id"] in live_now} for r in rows]
    return {
        "creators": creators,
        "total": total,
        "limit": limit,
        "offset": offset,
        "page": offset // limit + 1,
        "hasMore": offset + len(creators) < total,
    }


def public_profile(conn: Conn, username: str, viewer: UUID | None = None) -> dict[str, Any]:
    """GET /users/public/creator/{username}: a creator's public page (camelCase, as the frontend reads it)."""
    row = conn.execute(
        """SELECT u.id, u.username, u.display_name, u.bio, u.profile_pic_url,
                  u.video_price, u.voice_price, u.message_price,
                  s.id AS stream_id, s.title AS stream_title, s.viewer_count,
                  (SELECT count(*) FROM follows f WHERE f.creator_id = u.id) AS follower_count,
                  EXISTS (SELECT 1 FROM follows f WHERE f.creator_id = u.id AND f.follower_id = %(viewer)s)
                      AS is_following
           FROM users u
           LEFT JOIN streams s ON s.creator_id = u.id AND s.status = 'live'
           WHERE lower(u.username) = lower(%(u)s) AND u.is_creator AND u.role <> 'system'""",
        {"u": username.strip()[:64], "viewer": viewer},
    ).fetchone()
    if row is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    live = row["stream_id"] is not None
    return {
        "creator": {
            "id": row["id"],
            "username": row["username"],
            "display_name": row["display_name"],
            "bio": row["bio"],
            "profilePicUrl": row["profile_pic_url"],
            "videoPrice": row["video_price"],
            "voicePrice": row["voice_price"],
            "messagePrice": row["message_price"],
            "isOnline": presence.is_online(row["id"]),
            "isLiveStreaming": live,
            "streamTitle": row["stream_title"],
            "viewerCount": row["viewer_count"] if live else 0,
            "followerCount": row["follower_count"],
            "isFollowing": row["is_following"],
        }
    }


# ---- rates -------------------------------------------------------------------------------------------------

Rate = Annotated[int, Field(strict=True, ge=MIN_RATE, le=MAX_RATE)]
_RATE_COLUMNS = {"videoCall": "video_price", "voiceCall": "voice_price", "message": "message_price",
                 "stream": "stream_price"}  # fmt: skip


class Rates(BaseModel):
    """Per-minute prices in whole tokens (1-10,000); other keys the frontend sends are reported as ignored."""

    model_config = ConfigDict(extra="allow")

    videoCall: Rate | None = None
    voiceCall: Rate | None = None
    message: Rate | None = Field(default=None, validation_alias=AliasChoices("message", "textMessage"))
    stream: Rate | None = Field(default=None, validation_alias=AliasChoices("stream", "liveStream"))


class RatesUpdate(BaseModel):
    """POST /creators/rates body."""

    model_config = ConfigDict(extra="forbid")

    rates: Rates


def get_rates(conn: Conn, creator: User) -> dict[str, Any]:
    """GET /creators/rates."""
    row = conn.execute(
        "SELECT video_price, voice_price, message_price, stream_price FROM users WHERE id = %(id)s",
        {"id": creator.id},
    ).fetchone()
    if row is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return {"rates": {name: row[column] for name, column in _RATE_COLUMNS.items()}}


def set_rates(conn: Conn, creator: User, update: Rates) -> dict[str, Any]:
    """POST /creators/rates: set the rates sent (a rate cannot be cleared, only changed)."""
    extra = update.model_extra or {}
    sent = {name for name in update.model_fields_set if name not in extra}
    if not sent:
        raise Unprocessable(
            "Send at least one of: " + ", ".join(_RATE_COLUMNS),
            errors=[{"field": "rates", "message": "empty"}],
        )
    changes = {}
    for name in sorted(sent):
        value = getattr(update, name)
        if value is None:
            raise Unprocessable(
                f"rates.{name} cannot be null", errors=[{"field": f"rates.{name}", "message": "null"}]
            )
        changes[_RATE_COLUMNS[name]] = value
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in changes
    )
    conn.execute(
        sql.SQL("UPDATE users SET {}, updated_at = now() WHERE id = %(id)s").format(assignments),
        {**changes, "id": creator.id},
    )
    return {**get_rates(conn, creator), "ignored": sorted(extra)}


# ---- follows -----------------------------------------------------------------------------------------------


def follow_counts(conn: Conn, creator_id: UUID) -> dict[str, int]:
    """{followersCount, subscribersCount}; subscriptions are not part of this backend, so always 0."""
    row = conn.execute(
        "SELECT count(*) AS n FROM follows WHERE creator_id = %(id)s", {"id": creator_id}
    ).fetchone()
    return {"followersCount": row["n"] if row else 0, "subscribersCount": 0}


def follow(conn: Conn, fan: User, creator_id: UUID) -> dict[str, Any]:
    """POST /creators/{id}/follow: idempotent; only creators can be followed, never oneself."""
    if creator_id == fan.id:
        raise BadRequest("You cannot follow yourself", code="CANNOT_FOLLOW_SELF")
    creator = conn.execute(
        "SELECT id FROM users WHERE id = %(id)s AND is_creator AND role <> 'system'", {"id": creator_id}
    ).fetchone()
    if creator is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    conn.execute(
        "INSERT INTO follows (follower_id, creator_id) VALUES (%(f)s, %(c)s) ON CONFLICT DO NOTHING",
        {"f": fan.id, "c": creator_id},
    )
    return {"following": True, "creatorId": creator_id, **follow_counts(conn, creator_id)}


def unfollow(conn: Conn, fan: User, creator_id: UUID) -> dict[str, Any]:
    """DELETE /creators/{id}/unfollow: idempotent; works even if the creator has since stopped being one."""
    deleted = conn.execute(
        "DELETE FROM follows WHERE follower_id = %(f)s AND creator_id = %(c)s", {"f": fan.id, "c": creator_id}
    ).rowcount
    if (
        not deleted
        and conn.execute("SELECT 1 FROM users WHERE id = %(id)s", {"id": creator_id}).fetchone() is None
    ):
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    return {"following": False, "creatorId": creator_id, **follow_counts(conn, creator_id)}


# ---- applications ------------------------------------------------------------------------------------------


class CreatorApplication(BaseModel):
    """POST /users/apply-creator body; fields the form sends beyond these (is_creator included) are ignored."""

    model_config = ConfigDict(extra="ignore")

    bio: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None
    category: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = Field(
        default=None, validation_alias=AliasChoices("category", "creatorType", "creator_type")
    )
    experience: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    social_links: dict[Annotated[str, StringConstraints(max_length=40)], Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=dict, max_length=10, validation_alias=AliasChoices("socialLinks", "social_links", "socialMedia")
    )  # fmt: skip


def apply(conn: Conn, user: User, application: CreatorApplication) -> dict[str, Any]:
    """Record a pending application (one at a time); an admin approves it with PUT /admin/users/{uid}/role."""
    if user.is_creator:
        raise Conflict("You are already a creator", code="ALREADY_CREATOR")
    row = conn.execute(
        """INSERT INTO creator_applications (user_id, bio, category, experience, social_links)
           VALUES (%(u)s, %(bio)s, %(cat)s, %(exp)s, %(links)s)
           ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING
           RETURNING id, status, submitted_at""",
        {
            "u": user.id,
            "bio": application.bio,
            "cat": application.category,
            "exp": application.experience,
            "links": Jsonb(application.social_links),
        },
    ).fetchone()
    if row is None:
        pending = conn.execute(
            "SELECT id FROM creator_applications WHERE user_id = %(u)s AND status = 'pending'", {"u": user.id}
        ).fetchone()
        raise Conflict(
            "Your application is already pending review",
            code="APPLICATION_PENDING",
            applicationId=str(pending["id"]) if pending else None,
        )
    return {"application": {"id": row["id"], "status": row["status"], "submittedAt": row["submitted_at"]}}

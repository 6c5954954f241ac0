"""Follows (public, counted) and favourites (a fan's private list), and a creator's own follower stats."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from lib.db import Conn
from lib.errors import BadRequest, NotFound, Unprocessable
from lib.users import User


def follow_counts(conn: Conn, creator_id: UUID) -> dict[str, int]:
    """{followersCount, subscribersCount}; subscriptions are not part of this backend yet, so always 0."""
    row = conn.execute(
        "SELECT count(*) AS n FROM follows WHERE creator_id = %(id)s", {"id": creator_id}
    ).fetchone()
    return {"followersCount": row["n"] if row else 0, "subscribersCount": 0}


def creator_stats(conn: Conn, creator: User) -> dict[str, Any]:
    """GET /creators/stats: the counts, plus `success` and a `data` mirror (the mobile dashboard reads both)."""
    counts = follow_counts(conn, creator.id)
    return {"success": True, **counts, "data": {"success": True, **counts}}


def _creator_id(conn: Conn, *, creator_id: UUID | None = None, username: str | None = None) -> UUID:
    row = conn.execute(
        """SELECT id FROM users
           WHERE is_creator AND role <> 'system'
             AND (id = %(id)s OR lower(username) = lower(%(u)s))""",
        {"id": creator_id, "u": username.strip().lstrip("@")[:64] if username else None},
    ).fetchone()
    if row is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    return UUID(str(row["id"]))


def follow(conn: Conn, fan: User, creator_id: UUID) -> dict[str, Any]:
    """POST /creators/{id}/follow: idempotent; only creators can be followed, never oneself."""
    if creator_id == fan.id:
        raise BadRequest("You cannot follow yourself", code="CANNOT_FOLLOW_SELF")
    _creator_id(conn, creator_id=creator_id)
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


class FollowRequest(BaseModel):
    """POST /users/follow body: the creator by username (CreatorCard) or id; `action` makes it idempotent."""

    model_config = ConfigDict(extra="ignore")

    creator_username: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, validation_alias=AliasChoices("creatorUsername", "username")
    )
    creator_id: UUID | None = Field(default=None, validation_alias=AliasChoices("creatorId", "creator_id"))
    action: Literal["follow", "unfollow", "toggle"] = "toggle"


def follow_request(conn: Conn, fan: User, body: FollowRequest) -> dict[str, Any]:
    """POST /users/follow: follow or unfollow (toggle unless `action` says which), via follow()/unfollow()."""
    if not body.creator_username and body.creator_id is None:
        raise Unprocessable(
            "Send creatorUsername or creatorId",
            errors=[{"field": "creatorUsername", "message": "required"}],
        )
    creator_id = _creator_id(conn, creator_id=body.creator_id, username=body.creator_username)
    action = body.action
    if action == "toggle":
        following = conn.execute(
            "SELECT 1 FROM follows WHERE follower_id = %(f)s AND creator_id = %(c)s",
            {"f": fan.id, "c": creator_id},
        ).fetchone()
        action = "unfollow" if following else "follow"
    result = follow(conn, fan, creator_id) if action == "follow" else unfollow(conn, fan, creator_id)
    return {"success": True, "action": "followed" if action == "follow" else "unfollowed", **result}


class FavoriteRequest(BaseModel):
    """POST /users/favorite body (FanEngagement sends {creatorId}); `favorite` makes it idempotent."""

    model_config = ConfigDict(extra="ignore")

    creator_id: UUID = Field(validation_alias=AliasChoices("creatorId", "creator_id"))
    favorite: bool | None = None


def favorite_request(conn: Conn, fan: User, body: FavoriteRequest) -> dict[str, Any]:
    """POST /users/favorite: add or remove a favourite creator (a toggle unless `favorite` says which)."""
    if body.creator_id == fan.id:
        raise BadRequest("You cannot favourite yourself", code="CANNOT_FAVORITE_SELF")
    want = body.favorite
    if want is None or not want:
        removed = conn.execute(
            "DELETE FROM favorites WHERE fan_id = %(f)s AND creator_id = %(c)s",
            {"f": fan.id, "c": body.creator_id},
        ).rowcount
        if removed or want is False:
            return {"success": True, "favorited": False, "creatorId": body.creator_id}
    _creator_id(conn, creator_id=body.creator_id)
    conn.execute(
        "INSERT INTO favorites (fan_id, creator_id) VALUES (%(f)s, %(c)s) ON CONFLICT DO NOTHING",
        {"f": fan.id, "c": body.creator_id},
    )
    return {"success": True, "favorited": True, "creatorId": body.creator_id}

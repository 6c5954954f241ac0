"""The public creator directory and the public creator pages."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from psycopg import sql

from lib import presence
from lib.db import Conn
from lib.errors import NotFound

SortBy = Literal["newest", "created_at", "popular", "online", "price_low", "price-low", "price_high", "price-high",
                 "username"]  # fmt: skip

# Every order ends on a unique key, so pages never repeat or skip a creator.
_ORDER = {
    "newest": "u.created_at DESC, u.id DESC",
    "popular": "follower_count DESC, u.created_at DESC, u.id DESC",
    "online": "(u.id = ANY(%(online)s::uuid[])) DESC, u.created_at DESC, u.id DESC",
    "price_low": "u.video_price ASC NULLS LAST, u.id ASC",
    "price_high": "u.video_price DESC NULLS LAST, u.id ASC",
    "username": "u.username ASC",
}
_SORT_ALIASES = {"created_at": "newest", "price-low": "price_low", "price-high": "price_high"}
_DIRECTORY_WHERE = """u.is_creator AND u.role <> 'system'
    AND (%(category)s::text IS NULL OR lower(u.creator_type) = lower(%(category)s::text))
    AND (NOT %(online_only)s OR u.id = ANY(%(online)s::uuid[]))
    AND (%(exclude)s::uuid IS NULL OR u.id <> %(exclude)s::uuid)
    AND (NOT %(following)s OR EXISTS (
        SELECT 1 FROM follows mine WHERE mine.follower_id = %(viewer)s::uuid AND mine.creator_id = u.id))
    AND (cardinality(%(languages)s::text[]) = 0 OR EXISTS (
        SELECT 1 FROM unnest(u.languages) AS l(name) WHERE lower(l.name) = ANY(%(languages)s::text[])))"""


def directory(
    conn: Conn,
    *,
    limit: int,
    offset: int,
    category: str | None = None,
    online_only: bool = False,
    sort_by: SortBy = "newest",
    viewer: UUID | None = None,
    following: bool = False,
    exclude_user_id: UUID | None = None,
    languages: list[str] | None = None,
) -> dict[str, Any]:
    """GET /users/creators: a page of creators with is_online (Redis heartbeat) and is_live (streams).

    `following` keeps the creators the viewer follows (none for an anonymous viewer); `languages` keeps creators
    speaking any of them (case-insensitive); `exclude_user_id` leaves one user out (the viewer themself).
    """
    sort = _SORT_ALIASES.get(sort_by, sort_by)
    category = category.strip() if category and category.strip().lower() not in ("", "all") else None
    online: list[UUID] = []
    if online_only or sort == "online":
        online = presence.online_creator_ids() or []  # Redis down: nobody is known to be online
    params = {
        "category": category,
        "online_only": online_only,
        "online": online,
        "exclude": exclude_user_id,
        "following": following,
        "viewer": viewer,
        "languages": [lang.strip().lower() for lang in languages or [] if lang.strip()],
        "limit": limit,
        "offset": offset,
    }
    page_query = sql.SQL(
        """SELECT u.id, u.username, u.display_name, u.profile_pic_url, u.bio, u.creator_type,
                  u.video_price, u.voice_price, u.languages, fc.follower_count,
                  EXISTS (SELECT 1 FROM streams s WHERE s.creator_id = u.id AND s.status = 'live') AS is_live,
                  EXISTS (SELECT 1 FROM follows f WHERE f.creator_id = u.id AND f.follower_id = %(viewer)s::uuid)
                      AS is_following
           FROM users u
           CROSS JOIN LATERAL (SELECT count(*) AS follower_count FROM follows f WHERE f.creator_id = u.id) fc
           WHERE {where}
           ORDER BY {order}
           LIMIT %(limit)s OFFSET %(offset)s"""
    ).format(where=sql.SQL(_DIRECTORY_WHERE), order=sql.SQL(_ORDER[sort]))
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


_PAGE_SELECT = """
    SELECT u.id, u.username, u.display_name, u.bio, u.profile_pic_url, u.banner_url, u.creator_type, u.interests,
           u.languages, u.video_price, u.voice_price, u.message_price, u.stream_price, u.text_message_price,
           u.image_message_price, u.video_message_price, u.voice_memo_price,
           s.id AS stream_id, s.title AS stream_title, s.viewer_count, s.started_at AS stream_started_at,
           (SELECT count(*) FROM follows f WHERE f.creator_id = u.id) AS follower_count,
           (SELECT coalesce(sum(st.peak_viewers), 0) FROM streams st WHERE st.creator_id = u.id) AS views,
           EXISTS (SELECT 1 FROM follows f WHERE f.creator_id = u.id AND f.follower_id = %(viewer)s::uuid)
               AS is_following
    FROM users u
    LEFT JOIN streams s ON s.creator_id = u.id AND s.status = 'live'
    WHERE u.is_creator AND u.role <> 'system' AND """


def _page_row(conn: Conn, where: str, params: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(_PAGE_SELECT + where, params).fetchone()
    if row is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    return dict(row)


def public_profile(conn: Conn, username: str, viewer: UUID | None = None) -> dict[str, Any]:
    """GET /users/public/creator/{username}: a creator's public page (camelCase, as the frontend reads it).

    Streams are free to watch in this backend, so a live stream is never paid: isPaidStream false, tokenPrice 0,
    hasAccess true.
    """
    row = _page_row(
        conn, "lower(u.username) = lower(%(u)s)", {"u": username.strip().lstrip("@")[:64], "viewer": viewer}
    )
    live = row["stream_id"] is not None
    return {
        "creator": {
            "id": row["id"],
            "username": row["username"],
            "display_name": row["display_name"],
            "bio": row["bio"],
            "profilePicUrl": row["profile_pic_url"],
            "banner_url": row["banner_url"],
            "interests": row["interests"],
            "videoPrice": row["video_price"],
            "voicePrice": row["voice_price"],
            "messagePrice": row["message_price"],
            "isOnline": presence.is_online(row["id"]),
            "isLiveStreaming": live,
            "streamTitle": row["stream_title"],
            "streamStartTime": row["stream_started_at"] if live else None,
            "viewerCount": row["viewer_count"] if live else 0,
            "isPaidStream": False,
            "tokenPrice": 0,
            "hasAccess": True,
            "followerCount": row["follower_count"],
            "isFollowing": row["is_following"],
        }
    }


def public_page(conn: Conn, ref: str, viewer: UUID | None = None) -> dict[str, Any]:
    """GET /public/creators/{idOrUsername}: {creator, stats: {views, followers, subscribers}}.

    `views` is the sum of peak viewers over the creator's streams (no page views are recorded); subscribers are
    0 until subscriptions exist.
    """
    ref = ref.strip().lstrip("@")[:64]
    try:
        creator_id: UUID | None = UUID(ref)
    except ValueError:
        creator_id = None
    if creator_id is not None:
        row = _page_row(conn, "u.id = %(id)s", {"id": creator_id, "viewer": viewer})
    else:
        row = _page_row(conn, "lower(u.username) = lower(%(u)s)", {"u": ref, "viewer": viewer})
    live = row.pop("stream_id") is not None
    stats = {"views": row.pop("views"), "followers": row["follower_count"], "subscribers": 0}
    creator = {
        **{k: v for k, v in row.items() if not k.startswith("stream_") and k != "viewer_count"},
        "name": row["display_name"] or row["username"],
        "is_creator": True,
        "is_online": presence.is_online(row["id"]),
        "is_live": live,
    }
    return {"creator": creator, "stats": stats}

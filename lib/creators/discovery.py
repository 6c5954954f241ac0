"""Creator search and discovery feeds (featured, trending, recommendations, categories).

Search is trigram similarity (pg_trgm in schema `extensions`, a GIN index over "username display_name
creator_type" of creators, migration 0093): word similarity tolerates typos and finds a query inside a longer
name; an exact username, then a username prefix, then similarity rank first. Without pg_trgm (the embedded local
PostgreSQL has no contrib modules) it falls back to an unindexed substring match. Results never carry an email,
a balance or anything else private: the columns are listed here.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from lib import presence
from lib.db import Conn

Feed = Literal["search", "featured", "trending", "recommendations"]
DiscoverySort = Literal["relevance", "rating", "subscribers", "popular", "price_low", "price_high", "newest"]

# The indexed expression (users_creator_search_trgm); the query must repeat it exactly to use the index.
_TEXT = "lower(u.username || ' ' || coalesce(u.display_name, '') || ' ' || coalesce(u.creator_type, ''))"
# Word similarity a match needs: 0.3 lets a misspelt short name through ("sofia" finds "sophia", 0.33).
WORD_SIMILARITY_THRESHOLD = 0.3
TRENDING_DAYS = 7
_trigram: dict[str, bool] = {}


def normalize_query(raw: str | None) -> str:
    """How a query is matched: trimmed, lower-case, single spaces, no leading @, at most 100 characters."""
    return " ".join((raw or "").lower().split()).lstrip("@").strip()[:100]


def trigram_available(conn: Conn) -> bool:
    """Whether pg_trgm and the search index exist (checked once per database)."""
    info = conn.info
    key = f"{info.host}:{info.port}/{info.dbname}"
    if key not in _trigram:
        row = conn.execute(
            """SELECT to_regprocedure('extensions.word_similarity(text,text)') IS NOT NULL
                      AND to_regclass('public.users_creator_search_trgm') IS NOT NULL AS ok"""
        ).fetchone()
        _trigram[key] = bool(row and row["ok"])
    return _trigram[key]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_SELECT = """
    SELECT u.id, u.username, u.display_name, u.profile_pic_url, u.bio, u.creator_type, u.interests, u.languages,
           u.video_price, u.voice_price, u.stream_price, u.created_at,
           {followers} AS follower_count, {extra} AS score,
           EXISTS (SELECT 1 FROM streams s WHERE s.creator_id = u.id AND s.status = 'live') AS is_live
    FROM users u {joins}
    WHERE u.is_creator AND u.role <> 'system'
      AND (%(viewer)s::uuid IS NULL OR u.id <> %(viewer)s::uuid)
      AND (%(category)s::text IS NULL OR lower(u.creator_type) = %(category)s::text)
      AND (NOT %(online_only)s OR u.id = ANY(%(online)s::uuid[]))
      AND (%(max_price)s::numeric IS NULL OR least(u.video_price, u.voice_price) <= %(max_price)s::numeric)
      AND {match}
    ORDER BY {order}
    LIMIT %(limit)s OFFSET %(offset)s"""

_SORTS = {
    "rating": "follower_count DESC, u.created_at DESC, u.id",  # no ratings here: the most followed first
    "subscribers": "follower_count DESC, u.created_at DESC, u.id",
    "popular": "follower_count DESC, u.created_at DESC, u.id",
    "price_low": "u.video_price ASC NULLS LAST, u.id",
    "price_high": "u.video_price DESC NULLS LAST, u.id",
    "newest": "u.created_at DESC, u.id",
}
# Counting every creator's followers once (a hash join) beats one count per row when the order needs them all.
_ALL_FOLLOWERS = (
    "LEFT JOIN (SELECT creator_id, count(*) AS n FROM follows GROUP BY creator_id) fc ON fc.creator_id = u.id"
)
_ROW_FOLLOWERS = "(SELECT count(*) FROM follows f WHERE f.creator_id = u.id)"


def find(
    conn: Conn,
    feed: Feed,
    *,
    query: str | None = None,
    viewer: UUID | None = None,
    category: str | None = None,
    online_only: bool = False,
    max_price: float | None = None,
    sort_by: DiscoverySort = "relevance",
    limit: int = 20,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Creators for one feed, as rows (see discovery_item / search_item for the shapes the pages read)."""
    q = normalize_query(query)
    if feed == "search" and not q:
        return []
    category = category.strip().lower() if category and category.strip().lower() not in ("", "all") else None
    params: dict[str, Any] = {
        "viewer": viewer,
        "category": category,
        "online_only": online_only,
        "online": (presence.online_creator_ids() or []) if online_only else [],
        "max_price": max_price,
        "limit": limit,
        "offset": offset,
        "q": q,
        "contains": f"%{_like_escape(q)}%",
        "prefix": f"{_like_escape(q)}%",
        "days": TRENDING_DAYS,
    }
    joins, followers, extra, match = "", _ROW_FOLLOWERS, "0", "true"
    order = _SORTS.get(sort_by, "")
    if feed == "search":
        relevance = (
            "(lower(u.username) = %(q)s) DESC, (lower(u.username) LIKE %(prefix)s) DESC, score DESC, u.id"
        )
        if trigram_available(conn):
            return _nearest(conn, params, sort=_SORTS.get(sort_by) or relevance.replace("u.", "c."))
        extra = f"1.0 / (1 + strpos({_TEXT}, %(q)s))"
        match = f"{_TEXT} LIKE %(contains)s"
        order = order or relevance
    else:
        joins, followers = _ALL_FOLLOWERS, "coalesce(fc.n, 0)"
        if feed == "featured":
            order = order or "is_live DESC, follower_count DESC, u.created_at DESC, u.id"
        elif feed == "trending":
            joins += """ LEFT JOIN (SELECT creator_id, count(*) AS n FROM follows
                                    WHERE created_at > now() - make_interval(days => %(days)s)
                                    GROUP BY creator_id) recent ON recent.creator_id = u.id"""
            extra = "coalesce(recent.n, 0)"
            order = order or "score DESC, follower_count DESC, u.created_at DESC, u.id"
        else:  # recommendations: creators in the categories of those I follow, that I don't follow yet
            extra = """(lower(u.creator_type) IN (
                           SELECT lower(c.creator_type) FROM follows mine JOIN users c ON c.id = mine.creator_id
                           WHERE mine.follower_id = %(viewer)s::uuid AND c.creator_type IS NOT NULL))::int"""
            match = """NOT EXISTS (SELECT 1 FROM follows mine
                                   WHERE mine.follower_id = %(viewer)s::uuid AND mine.creator_id = u.id)"""
            order = order or "score DESC, follower_count DESC, u.created_at DESC, u.id"
    query_sql = sql.SQL(
        _SELECT.format(followers=followers, extra=extra, joins=joins, match=match, order=order)
    )
    return [dict(r) for r in conn.execute(query_sql, params).fetchall()]


# The nearest creators by word-similarity distance, straight from the GiST index (ORDER BY <<-> LIMIT), then
# re-ranked: an exact username, then a username prefix, then similarity (strict word similarity breaks ties in
# favour of whole words: "sofia" ranks sophia over sophie).
_NEAREST = """
    SELECT * FROM (
        SELECT u.id, u.username, u.display_name, u.profile_pic_url, u.bio, u.creator_type, u.interests,
               u.languages, u.video_price, u.voice_price, u.stream_price, u.created_at,
               (SELECT count(*) FROM follows f WHERE f.creator_id = u.id) AS follower_count,
               extensions.word_similarity(%(q)s, {text}) + extensions.strict_word_similarity(%(q)s, {text})
                   AS score,
               EXISTS (SELECT 1 FROM streams s WHERE s.creator_id = u.id AND s.status = 'live') AS is_live
        FROM users u
        WHERE u.is_creator AND u.role <> 'system'
          AND (%(viewer)s::uuid IS NULL OR u.id <> %(viewer)s::uuid)
          AND (%(category)s::text IS NULL OR lower(u.creator_type) = %(category)s::text)
          AND (NOT %(online_only)s OR u.id = ANY(%(online)s::uuid[]))
          AND (%(max_price)s::numeric IS NULL OR least(u.video_price, u.voice_price) <= %(max_price)s::numeric)
          AND %(q)s OPERATOR(extensions.<%%) {text}
        ORDER BY %(q)s OPERATOR(extensions.<<->) {text}
        LIMIT %(pool)s
    ) c
    ORDER BY {order}
    LIMIT %(limit)s OFFSET %(offset)s"""
_POOL = 100  # candidates re-ranked per page: the nearest `offset + limit + _POOL`


def _nearest(conn: Conn, params: dict[str, Any], *, sort: str) -> list[dict[str, Any]]:
    conn.execute(
        "SELECT set_config('pg_trgm.word_similarity_threshold', %(t)s, true)",
        {"t": str(WORD_SIMILARITY_THRESHOLD)},
    )
    order = sort.replace("u.", "c.")
    query = sql.SQL(_NEAREST.format(text=_TEXT, order=order))
    rows = conn.execute(query, {**params, "pool": params["offset"] + params["limit"] + _POOL}).fetchall()
    return [dict(r) for r in rows]


def search_item(row: dict[str, Any], online: set[UUID]) -> dict[str, Any]:
    """A creator as /users/search answers it (the directory's fields, which TokenTipping reads)."""
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "profile_pic_url": row["profile_pic_url"],
        "bio": row["bio"],
        "creator_type": row["creator_type"],
        "video_price": row["video_price"],
        "voice_price": row["voice_price"],
        "follower_count": row["follower_count"],
        "is_online": row["id"] in online,
        "is_live": row["is_live"],
    }


def discovery_item(row: dict[str, Any], online: set[UUID], feed: Feed) -> dict[str, Any]:
    """A creator as EnhancedCreatorDiscovery reads it (camelCase, creatorProfile.{categories, pricing, analytics})."""
    item = search_item(row, online)
    categories = list(dict.fromkeys(c for c in [row["creator_type"], *row["interests"]] if c))
    item |= {
        "displayName": row["display_name"] or row["username"],
        "profilePicture": row["profile_pic_url"],
        "isOnline": item["is_online"],
        "isLive": row["is_live"],
        "languages": row["languages"],
        "creatorProfile": {
            "categories": categories,
            "pricing": {
                "videoCall": row["video_price"],
                "phoneCall": row["voice_price"],
                "privateStream": row["stream_price"],
            },
            "analytics": {"totalSubscribers": 0, "averageRating": None, "followers": row["follower_count"]},
        },
    }
    if feed == "search":
        item["relevance"] = round(float(row["score"]), 4)
    elif feed == "trending":
        item["trendingScore"] = int(row["score"])
    elif feed == "recommendations":
        item["recommendationReason"] = (
            f"Because you follow {row['creator_type']} creators" if row["score"] else "Popular on Digis"
        )
    return item


def search(conn: Conn, query: str | None, *, viewer: UUID | None, limit: int = 20) -> dict[str, Any]:
    """GET /users/search?q=: {creators} (an empty query finds nobody)."""
    rows = find(conn, "search", query=query, viewer=viewer, limit=limit)
    online = presence.online_among(r["id"] for r in rows)
    return {"creators": [search_item(r, online) for r in rows], "query": normalize_query(query)}


class DiscoveryQuery(BaseModel):
    """The query string EnhancedCreatorDiscovery sends; it has no ratings or verification levels to filter on, so
    `minRating` and `verificationLevel` are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    q: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)
    category: str | None = Field(default=None, max_length=50)
    is_online: bool = Field(default=False, alias="isOnline")
    max_price: float | None = Field(default=None, ge=0, le=1_000_000, alias="maxPrice")
    sort_by: DiscoverySort = Field(default="relevance", alias="sortBy")
    min_rating: float | None = Field(default=None, alias="minRating")
    verification_level: str | None = Field(default=None, max_length=20, alias="verificationLevel")


def discover(conn: Conn, feed: Feed, params: DiscoveryQuery, *, viewer: UUID | None) -> dict[str, Any]:
    """GET /discovery/{search|featured|trending|recommendations}: {creators, limit, offset, hasMore}."""
    rows = find(
        conn,
        feed,
        query=params.q,
        viewer=viewer,
        category=params.category,
        online_only=params.is_online,
        max_price=params.max_price,
        sort_by=params.sort_by,
        limit=params.limit,
        offset=params.offset,
    )
    online = presence.online_among(r["id"] for r in rows)
    creators = [discovery_item(r, online, feed) for r in rows]
    return {
        "creators": creators,
        "limit": params.limit,
        "offset": params.offset,
        "hasMore": len(creators) == params.limit,
    }


def categories(conn: Conn) -> dict[str, Any]:
    """GET /discovery/categories: {categories: [{id, name, creatorCount}]}, the creator types in use, biggest first."""
    rows = conn.execute(
        """SELECT lower(creator_type) AS id, mode() WITHIN GROUP (ORDER BY creator_type) AS name,
                  count(*) AS n
           FROM users
           WHERE is_creator AND role <> 'system' AND btrim(coalesce(creator_type, '')) <> ''
           GROUP BY 1
           ORDER BY n DESC, id"""
    ).fetchall()
    return {"categories": [{"id": r["id"], "name": r["name"], "creatorCount": r["n"]} for r in rows]}

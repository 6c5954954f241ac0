"""Every read of classes: one SELECT (class, host, host rating, its stream, the reader's seat) shaped for the pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow

from lib.classes.models import ClassOut, Host, ReviewOut, Reviews, ReviewStats
from lib.db import Conn

MAX_LIST = 200

# `status` is derived: a class whose stream ended, or that never went live and is past its end, is over.
_SELECT = """
SELECT c.id, c.creator_id, c.title, c.description, c.category, c.tags, c.requirements, c.what_to_expect,
       c.cover_image_url, c.starts_at, c.duration_minutes, c.max_participants, c.token_price, c.enrolled_count,
       c.stream_id, s.channel,
       CASE WHEN c.status = 'cancelled' THEN 'cancelled'
            WHEN s.status = 'live' THEN 'live'
            WHEN s.status = 'ended' THEN 'ended'
            WHEN c.starts_at + make_interval(mins => c.duration_minutes) < %(now)s THEN 'ended'
            ELSE 'scheduled' END AS status,
       u.username, coalesce(u.display_name, u.username) AS display_name, u.profile_pic_url,
       r.rating, coalesce(r.reviews, 0) AS review_count,
       e.user_id IS NOT NULL AS is_enrolled, e.paid_at IS NOT NULL AS has_paid,
       e.attended_at IS NOT NULL AS has_attended
FROM classes c
JOIN users u ON u.id = c.creator_id
LEFT JOIN streams s ON s.id = c.stream_id
LEFT JOIN class_enrollments e ON e.class_id = c.id AND e.user_id = %(me)s
LEFT JOIN LATERAL (
    SELECT round(avg(cr.rating), 2)::float AS rating, count(*) AS reviews
    FROM class_reviews cr JOIN classes hc ON hc.id = cr.class_id WHERE hc.creator_id = c.creator_id
) r ON true
"""


def _out(row: DictRow) -> ClassOut:
    at: datetime = row["starts_at"]
    name = row["display_name"]
    return ClassOut(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        category=row["category"],
        tags=list(row["tags"] or []),
        requirements=row["requirements"],
        whatToExpect=row["what_to_expect"],
        coverImage=row["cover_image_url"],
        startTime=at,
        duration=row["duration_minutes"],
        maxParticipants=row["max_participants"],
        currentParticipants=row["enrolled_count"],
        tokenPrice=row["token_price"],
        status=row["status"],
        isLive=row["status"] == "live",
        streamId=row["stream_id"],
        channel=row["channel"],
        creator=Host(
            id=row["creator_id"],
            username=row["username"],
            displayName=name,
            avatar=row["profile_pic_url"],
            rating=float(row["rating"] or 0),
            reviewCount=int(row["review_count"]),
        ),
        creator_id=row["creator_id"],
        creator_name=name,
        scheduled_at=at,
        scheduled_date=_utc(at, "%Y-%m-%d"),
        scheduled_time=_utc(at, "%H:%M"),
        duration_minutes=row["duration_minutes"],
        max_participants=row["max_participants"],
        enrolled_count=row["enrolled_count"],
        price=row["token_price"],
        isEnrolled=row["is_enrolled"],
        hasPaid=row["has_paid"],
        hasAttended=row["has_attended"],
    )


def _utc(at: datetime, fmt: str) -> str:
    return at.astimezone(UTC).strftime(fmt)


def _many(conn: Conn, where: str, params: dict[str, Any]) -> list[ClassOut]:
    rows = conn.execute(
        _SELECT + " WHERE " + where + " ORDER BY c.starts_at, c.id LIMIT %(limit)s",
        {"limit": MAX_LIST, **params},
    ).fetchall()
    return [_out(r) for r in rows]


def one(conn: Conn, class_id: UUID, me: UUID | None, now: datetime) -> ClassOut | None:
    """One class as the reader sees it."""
    row = conn.execute(_SELECT + " WHERE c.id = %(id)s", {"id": class_id, "me": me, "now": now}).fetchone()
    return _out(row) if row else None


def between(conn: Conn, start: datetime, end: datetime, me: UUID | None, now: datetime) -> list[ClassOut]:
    """Classes starting in [start, end] (cancelled ones left out), soonest first."""
    return _many(
        conn,
        "c.status <> 'cancelled' AND c.starts_at BETWEEN %(start)s AND %(end)s",
        {"start": start, "end": end, "me": me, "now": now},
    )


def enrolled(conn: Conn, user_id: UUID, now: datetime) -> list[ClassOut]:
    """Classes the user holds a seat in (cancelled ones left out)."""
    return _many(conn, "c.status <> 'cancelled' AND e.user_id IS NOT NULL", {"me": user_id, "now": now})


def hosting(conn: Conn, user_id: UUID, now: datetime) -> list[ClassOut]:
    """Classes the user hosts (cancelled ones left out)."""
    return _many(conn, "c.status <> 'cancelled' AND c.creator_id = %(me)s", {"me": user_id, "now": now})


def class_of_stream(conn: Conn, stream_id: UUID) -> DictRow | None:
    """The class a live stream belongs to, if any."""
    return conn.execute(
        "SELECT id, creator_id FROM classes WHERE stream_id = %(s)s", {"s": stream_id}
    ).fetchone()


def is_enrolled(conn: Conn, class_id: UUID, user_id: UUID) -> bool:
    """Whether the user holds a seat in the class."""
    row = conn.execute(
        "SELECT 1 FROM class_enrollments WHERE class_id = %(c)s AND user_id = %(u)s",
        {"c": class_id, "u": user_id},
    ).fetchone()
    return row is not None


def reviews(conn: Conn, class_id: UUID) -> Reviews:
    """A class's reviews, newest first, with their stats."""
    rows = conn.execute(
        """SELECT r.id, r.rating, r.review, r.user_id, r.created_at,
                  coalesce(u.display_name, u.username) AS name, u.profile_pic_url
           FROM class_reviews r JOIN users u ON u.id = r.user_id
           WHERE r.class_id = %(c)s ORDER BY r.created_at DESC, r.id LIMIT 500""",
        {"c": class_id},
    ).fetchall()
    items = [
        ReviewOut(
            id=r["id"],
            rating=r["rating"],
            review=r["review"],
            userId=r["user_id"],
            userName=r["name"],
            userAvatar=r["profile_pic_url"],
            createdAt=r["created_at"],
        )
        for r in rows
    ]
    distribution = {str(n): 0 for n in range(5, 0, -1)}
    for it in items:
        distribution[str(it.rating)] += 1
    average = round(sum(it.rating for it in items) / len(items), 2) if items else 0.0
    return Reviews(
        reviews=items,
        stats=ReviewStats(averageRating=average, totalReviews=len(items), ratingDistribution=distribution),
    )

"""Classes: scheduling, seats, the class stream, paying at attendance, reviews, and cancelling.

    scheduled --start-stream (host)--> live (its stream is live) --the stream ends--> ended
        '--cancel (host, before it goes live)--> cancelled

Seats: every join locks the class row, so a full class refuses the next seat however many arrive at once. Money:
the page tells a fan they pay "when you join the live class", so joining takes a seat and charges nothing;
`mark-attendance` (the fan opened the live class) charges the price once, through the ledger with the key
`class:{id}:fan:{user}`: a retry, a second tab or a rejoin answers `alreadyPaid` and never charges again. The
creator's earnings follow the ledger's fee and reserve rules, as a tip's do. A class can be cancelled only before
it goes live, so nobody has paid for it; a fan can give back a seat they have not paid for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from psycopg.rows import DictRow

from lib import ledger, spend, streams
from lib.classes import queries
from lib.classes.models import (
    Attendance,
    ClassCreated,
    ClassIn,
    ClassList,
    ClassOut,
    EnrolledList,
    Joined,
    ReviewIn,
    ReviewPosted,
    Reviews,
    StreamStarted,
)
from lib.db import Conn
from lib.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from lib.streams.models import GoLive
from lib.users import User

LEDGER_KIND = "class"
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=62)


def _key(class_id: UUID, fan_id: UUID) -> str:
    """The one ledger key a fan's payment for a class can ever use."""
    return f"class:{class_id}:fan:{fan_id}"


def _lock(conn: Conn, class_id: UUID) -> DictRow:
    row = conn.execute(
        """SELECT c.id, c.creator_id, c.title, c.description, c.category, c.tags, c.status, c.starts_at,
                  c.duration_minutes, c.max_participants, c.token_price, c.enrolled_count, c.stream_id,
                  s.status AS stream_status, s.channel
           FROM classes c LEFT JOIN streams s ON s.id = c.stream_id
           WHERE c.id = %(id)s FOR UPDATE OF c""",
        {"id": class_id},
    ).fetchone()
    if row is None:
        raise NotFound("Class not found", code="CLASS_NOT_FOUND")
    return row


def _shown(conn: Conn, class_id: UUID, me: UUID | None, now: datetime) -> ClassOut:
    out = queries.one(conn, class_id, me, now)
    if out is None:
        raise NotFound("Class not found", code="CLASS_NOT_FOUND")
    return out


def _over(row: DictRow, now: datetime) -> bool:
    if row["stream_status"] == "ended":
        return True
    end = row["starts_at"] + timedelta(minutes=row["duration_minutes"])
    return row["stream_status"] is None and end < now


# ---- the creator -----------------------------------------------------------------------------------------------


def create(conn: Conn, creator: User, body: ClassIn, now: datetime) -> ClassCreated:
    """Schedule a class (in the future); its cover is an https URL (the upload route answers one)."""
    if body.startTime <= now:
        raise Unprocessable(
            "A class must start in the future",
            code="VALIDATION_ERROR",
            errors=[{"field": "startTime", "message": "must be in the future"}],
        )
    row = conn.execute(
        """INSERT INTO classes (creator_id, title, description, category, tags, requirements, what_to_expect,
                                cover_image_url, starts_at, duration_minutes, max_participants, token_price)
           VALUES (%(c)s, %(t)s, %(d)s, %(cat)s, %(tags)s, %(req)s, %(wte)s, %(img)s, %(at)s, %(dur)s, %(max)s,
                   %(price)s)
           RETURNING id""",
        {
            "c": creator.id,
            "t": body.title,
            "d": body.description or None,
            "cat": body.category or None,
            "tags": list(dict.fromkeys(body.tags)),
            "req": body.requirements or None,
            "wte": body.whatToExpect or None,
            "img": body.coverImage,
            "at": body.startTime,
            "dur": body.duration,
            "max": body.maxParticipants,
            "price": body.tokenPrice,
        },
    ).fetchone()
    assert row is not None
    return ClassCreated.model_validate({"success": True, "class": _shown(conn, row["id"], creator.id, now)})


def start_stream(conn: Conn, creator: User, class_id: UUID, now: datetime) -> StreamStarted:
    """The host starts the class's live stream (again: the same stream while it is live)."""
    row = _lock(conn, class_id)
    if row["creator_id"] != creator.id:
        raise Forbidden("Only the class's host can start it", code="NOT_CLASS_HOST")
    if row["status"] == "cancelled":
        raise Conflict("This class was cancelled", code="CLASS_CANCELLED")
    if row["stream_status"] == "live":
        return StreamStarted(
            success=True,
            classId=class_id,
            streamId=row["stream_id"],
            channel=row["channel"],
            alreadyLive=True,
        )
    if _over(row, now):
        raise Conflict("This class is over", code="CLASS_ENDED")
    answer = streams.go_live(
        conn,
        creator,
        GoLive(title=row["title"][:100], category=(row["category"] or None), description=row["description"]),
        now=now,
    )
    conn.execute(
        "UPDATE classes SET status = 'live', stream_id = %(s)s, updated_at = now() WHERE id = %(id)s",
        {"s": answer.stream.id, "id": class_id},
    )
    return StreamStarted(
        success=True,
        classId=class_id,
        streamId=answer.stream.id,
        channel=answer.stream.channel,
        alreadyLive=False,
        stream=answer,
    )


def cancel(conn: Conn, user: User, class_id: UUID) -> None:
    """The host calls off a class that has not gone live (nobody has paid yet); repeating it is harmless."""
    row = _lock(conn, class_id)
    if row["creator_id"] != user.id:
        raise Forbidden("Only the class's host can cancel it", code="NOT_CLASS_HOST")
    if row["status"] == "cancelled":
        return
    if row["stream_id"] is not None:
        raise Conflict("A class that has gone live cannot be cancelled", code="CLASS_ALREADY_STARTED")
    conn.execute(
        "UPDATE classes SET status = 'cancelled', updated_at = now() WHERE id = %(id)s", {"id": class_id}
    )


# ---- the fan ---------------------------------------------------------------------------------------------------


def join(conn: Conn, fan: User, class_id: UUID, now: datetime) -> Joined:
    """Take a seat (nothing is charged until the fan attends); joining again answers the same seat."""
    row = _lock(conn, class_id)  # every seat is taken under this lock: capacity holds under any concurrency
    if row["creator_id"] == fan.id:
        raise BadRequest("You host this class", code="CANNOT_JOIN_OWN_CLASS")
    if row["status"] == "cancelled":
        raise Conflict("This class was cancelled", code="CLASS_CANCELLED")
    seat = queries.is_enrolled(conn, class_id, fan.id)
    if not seat:
        if _over(row, now):
            raise Conflict("This class is over", code="CLASS_ENDED")
        if row["enrolled_count"] >= row["max_participants"]:
            raise Conflict("This class is full", code="CLASS_FULL", maxParticipants=row["max_participants"])
        conn.execute(
            "INSERT INTO class_enrollments (class_id, user_id, enrolled_at) VALUES (%(c)s, %(u)s, %(at)s)",
            {"c": class_id, "u": fan.id, "at": now},
        )
        conn.execute(
            "UPDATE classes SET enrolled_count = enrolled_count + 1, updated_at = now() WHERE id = %(c)s",
            {"c": class_id},
        )
    return Joined(
        success=True,
        enrolled=True,
        alreadyEnrolled=seat,
        classId=class_id,
        tokenPrice=row["token_price"],
        currentParticipants=row["enrolled_count"] + (0 if seat else 1),
        maxParticipants=row["max_participants"],
    )


def leave(conn: Conn, fan: User, class_id: UUID) -> None:
    """Give back a seat not yet paid for (a paid seat stays: the fan attended)."""
    _lock(conn, class_id)
    seat = conn.execute(
        "SELECT paid_at FROM class_enrollments WHERE class_id = %(c)s AND user_id = %(u)s FOR UPDATE",
        {"c": class_id, "u": fan.id},
    ).fetchone()
    if seat is None:
        return
    if seat["paid_at"] is not None:
        raise Conflict("You attended and paid for this class", code="CLASS_ALREADY_PAID")
    conn.execute(
        "DELETE FROM class_enrollments WHERE class_id = %(c)s AND user_id = %(u)s",
        {"c": class_id, "u": fan.id},
    )
    conn.execute(
        "UPDATE classes SET enrolled_count = enrolled_count - 1, updated_at = now() WHERE id = %(c)s",
        {"c": class_id},
    )


def mark_attendance(conn: Conn, fan: User, class_id: UUID, now: datetime) -> Attendance:
    """The fan opened the live class: charge its price once (402 with required/current/needed when short)."""
    seat = conn.execute(
        """SELECT e.paid_tokens, e.paid_at, c.creator_id, c.token_price, c.status, s.status AS stream_status
           FROM class_enrollments e JOIN classes c ON c.id = e.class_id LEFT JOIN streams s ON s.id = c.stream_id
           WHERE e.class_id = %(c)s AND e.user_id = %(u)s FOR UPDATE OF e""",
        {"c": class_id, "u": fan.id},
    ).fetchone()
    if seat is None:
        _shown(conn, class_id, fan.id, now)  # 404 for no such class
        raise Forbidden("Join the class first", code="NOT_ENROLLED")
    if seat["paid_at"] is not None:
        return _attended(conn, fan, class_id, int(seat["paid_tokens"]), already=True)
    if seat["status"] == "cancelled":
        raise Conflict("This class was cancelled", code="CLASS_CANCELLED")
    if seat["stream_status"] != "live":
        raise Conflict("The class is not live", code="CLASS_NOT_LIVE")
    price = int(seat["token_price"])
    paid = spend.charge(
        conn,
        payer_id=fan.id,
        payee_id=seat["creator_id"],
        amount=price,
        kind=LEDGER_KIND,
        reference_type="class",
        reference_id=str(class_id),
        idempotency_key=_key(class_id, fan.id),
        reason="class",
        metadata={"class_id": str(class_id)},
    )
    entry_id = paid.entry_id
    conn.execute(
        """UPDATE class_enrollments SET paid_tokens = %(p)s, paid_at = %(at)s, attended_at = %(at)s,
                  ledger_entry_id = %(e)s
           WHERE class_id = %(c)s AND user_id = %(u)s""",
        {"p": price, "at": now, "e": entry_id, "c": class_id, "u": fan.id},
    )
    return _attended(conn, fan, class_id, price, already=False)


def _attended(conn: Conn, fan: User, class_id: UUID, tokens: int, *, already: bool) -> Attendance:
    balance = ledger.balance(conn, fan.id)
    return Attendance(
        success=True,
        alreadyPaid=already,
        tokensPaid=tokens,
        balance=balance,
        new_balance=balance,
        classId=class_id,
    )


def review(conn: Conn, fan: User, class_id: UUID, body: ReviewIn, now: datetime) -> ReviewPosted:
    """One review per fan who attended the class."""
    _shown(conn, class_id, fan.id, now)
    seat = conn.execute(
        "SELECT attended_at FROM class_enrollments WHERE class_id = %(c)s AND user_id = %(u)s",
        {"c": class_id, "u": fan.id},
    ).fetchone()
    if seat is None or seat["attended_at"] is None:
        raise Forbidden("Only fans who attended the class can review it", code="NOT_ATTENDED")
    row = conn.execute(
        """INSERT INTO class_reviews (class_id, user_id, rating, review) VALUES (%(c)s, %(u)s, %(r)s, %(t)s)
           ON CONFLICT ON CONSTRAINT class_reviews_one_per_fan DO NOTHING RETURNING id""",
        {"c": class_id, "u": fan.id, "r": body.rating, "t": body.review},
    ).fetchone()
    if row is None:
        raise Conflict("You already reviewed this class", code="ALREADY_REVIEWED")
    listed = queries.reviews(conn, class_id)
    mine = next(r for r in listed.reviews if r.id == row["id"])
    return ReviewPosted(success=True, review=mine, stats=listed.stats)


# ---- reads -----------------------------------------------------------------------------------------------------


def listing(
    conn: Conn, start: datetime | None, end: datetime | None, me: UUID | None, now: datetime
) -> ClassList:
    """GET /classes?startDate&endDate: classes starting in the window (default: the next 7 days)."""
    start = start or now - timedelta(hours=1)
    end = end or start + DEFAULT_WINDOW
    if end < start or end - start > MAX_WINDOW:
        raise Unprocessable(
            "endDate must follow startDate, at most 62 days later",
            code="VALIDATION_ERROR",
            errors=[{"field": "endDate", "message": "after startDate, within 62 days"}],
        )
    return ClassList(classes=queries.between(conn, start, end, me, now))


def my_enrolled(conn: Conn, user: User, now: datetime) -> EnrolledList:
    """GET /classes/enrolled: my seats, and their ids."""
    classes = queries.enrolled(conn, user.id, now)
    return EnrolledList(classes=classes, enrolledClassIds=[c.id for c in classes])


def _own_or_admin(user: User, user_id: UUID) -> None:
    if user.id != user_id and not user.is_admin:
        raise Forbidden("You can only see your own classes", code="FORBIDDEN")


def enrolled_of(conn: Conn, user: User, user_id: UUID, now: datetime) -> ClassList:
    """GET /classes/enrolled/{userId}: mine (an admin: anyone's)."""
    _own_or_admin(user, user_id)
    return ClassList(classes=queries.enrolled(conn, user_id, now))


def hosting_of(conn: Conn, user: User, user_id: UUID, now: datetime) -> ClassList:
    """GET /classes/hosting/{userId}: the classes I host (an admin: anyone's)."""
    _own_or_admin(user, user_id)
    return ClassList(classes=queries.hosting(conn, user_id, now))


def class_reviews(conn: Conn, class_id: UUID, now: datetime) -> Reviews:
    """GET /classes/{id}/reviews (public)."""
    _shown(conn, class_id, None, now)
    return queries.reviews(conn, class_id)


def check_viewer(conn: Conn, stream_id: UUID, viewer_id: UUID) -> None:
    """A class's live stream admits its host and enrolled fans only (lib.streams asks before minting a token)."""
    row = queries.class_of_stream(conn, stream_id)
    if row is None or row["creator_id"] == viewer_id:
        return
    if not queries.is_enrolled(conn, row["id"], viewer_id):
        raise Forbidden("This live class is for enrolled fans", code="CLASS_ENROLLMENT_REQUIRED")

"""Creator applications as admins review them: list, approve (the user becomes a creator), reject, queue.

A queued application is still `pending` in the database (one open application per user, as apply-creator
expects) with `queued_at` set; the API shows it as `queued`. Approve, reject and queue are safe to retry: the
same decision again answers 200 with no second effect (and no second audit row); a different decision on a decided
application is 409 `APPLICATION_DECIDED`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from lib.admin import audit
from lib.admin.users import like_pattern, lock_target, write_role
from lib.db import Conn
from lib.errors import Conflict, NotFound
from lib.users import User

ApplicationStatus = Literal["pending", "queued", "approved", "rejected"]
StatusFilter = Literal["", "all", "pending", "queued", "approved", "rejected"]
DateRange = Literal["today", "week", "month", "quarter", "year", "all"]
_RANGE_DAYS = {"week": 7, "month": 30, "quarter": 90, "year": 365}
Note = Annotated[StrictStr, StringConstraints(strip_whitespace=True, max_length=2000)]

STATUS_SQL = "CASE WHEN a.status = 'pending' AND a.queued_at IS NOT NULL THEN 'queued' ELSE a.status END"
APPLICATION_SELECT = f"""SELECT a.id, a.user_id, u.username, u.email, u.display_name, u.profile_pic_url, {STATUS_SQL} AS status,
                     a.bio, a.category, a.experience, a.social_links, a.submitted_at, a.reviewed_at, a.queued_at,
                     a.review_notes, a.rejection_reason, u.created_at AS member_since,
                     (SELECT coalesce(sum(p.amount_cents), 0)::bigint FROM payments p
                      WHERE p.user_id = a.user_id AND p.status = 'succeeded') AS spent_cents,
                     (SELECT count(*) FROM call_sessions c WHERE c.fan_id = a.user_id AND c.connected_at IS NOT NULL)
                     + (SELECT count(*) FROM call_sessions c
                        WHERE c.creator_id = a.user_id AND c.connected_at IS NOT NULL) AS sessions
              FROM creator_applications a JOIN users u ON u.id = a.user_id"""  # noqa: S608 - fixed text


class ApplicationFilters(BaseModel):
    """The dashboard's filters (list query and export body). `location` is accepted and ignored: no data."""

    model_config = ConfigDict(extra="ignore")

    status: StatusFilter | None = None
    search: Annotated[StrictStr, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    specialty: Annotated[StrictStr, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    location: Annotated[StrictStr, StringConstraints(max_length=50)] | None = None
    date_range: DateRange | None = Field(
        default=None, validation_alias=AliasChoices("dateRange", "date_range")
    )


def filter_sql(filters: ApplicationFilters, now: datetime) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters for these filters (over `a` applications joined with `u` users)."""
    status = None if filters.status in (None, "", "all") else filters.status
    since = None
    if filters.date_range == "today":
        since = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif filters.date_range in _RANGE_DAYS:
        since = now - timedelta(days=_RANGE_DAYS[filters.date_range])
    pattern = like_pattern(filters.search)
    specialty = None if filters.specialty in (None, "", "all") else filters.specialty
    where = f"""(%(status)s::text IS NULL OR {STATUS_SQL} = %(status)s)
                AND (%(since)s::timestamptz IS NULL OR a.submitted_at >= %(since)s)
                AND (%(pattern)s::text IS NULL OR u.username ILIKE %(pattern)s OR u.email ILIKE %(pattern)s
                     OR u.display_name ILIKE %(pattern)s)
                AND (%(specialty)s::text IS NULL OR lower(a.category) = lower(%(specialty)s))"""
    return where, {"status": status, "since": since, "pattern": pattern, "specialty": specialty}


def application_out(row: dict[str, Any]) -> dict[str, Any]:
    """One application with the fields the dashboard's cards read."""
    return {
        "id": row["id"],
        "userId": row["user_id"],
        "supabase_id": row["user_id"],
        "username": row["username"],
        "email": row["email"],
        "displayName": row["display_name"],
        "profilePic": row["profile_pic_url"],
        "location": None,
        "status": row["status"],
        "bio": row["bio"],
        "category": row["category"],
        "specialties": [row["category"]] if row["category"] else [],
        "experience": row["experience"],
        "socialMedia": row["social_links"],
        "submittedAt": row["submitted_at"],
        "reviewedAt": row["reviewed_at"],
        "queuedAt": row["queued_at"],
        "reviewNotes": row["review_notes"],
        "rejectionReason": row["rejection_reason"],
        "userStats": {
            "totalSpent": row["spent_cents"] / 100,  # USD, for display; totalSpentCents is exact
            "totalSpentCents": row["spent_cents"],
            "memberSince": row["member_since"],
            "sessionCount": row["sessions"],
            "avgRating": None,  # Digis has no ratings
        },
    }


def list_applications(
    conn: Conn, filters: ApplicationFilters, *, page: int, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    """GET /admin/creator-applications: newest first, `{applications, total, page, limit, hasMore, counts}`."""
    where, params = filter_sql(filters, now or datetime.now(UTC))
    params |= {"limit": limit, "offset": (page - 1) * limit}
    rows = conn.execute(
        f"""{APPLICATION_SELECT} WHERE {where} ORDER BY a.submitted_at DESC, a.id DESC
            LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    total = conn.execute(
        f"SELECT count(*) AS n FROM creator_applications a JOIN users u ON u.id = a.user_id WHERE {where}",  # noqa: S608
        params,
    ).fetchone()
    counts = dict.fromkeys(("pending", "queued", "approved", "rejected"), 0)
    for r in conn.execute(
        f"SELECT {STATUS_SQL} AS status, count(*) AS n FROM creator_applications a GROUP BY 1"  # noqa: S608
    ).fetchall():
        counts[r["status"]] = r["n"]
    count = total["n"] if total else 0
    return {
        "applications": [application_out(r) for r in rows],
        "total": count,
        "page": page,
        "limit": limit,
        "hasMore": (page - 1) * limit + len(rows) < count,
        "counts": counts,
    }


class ApproveBody(BaseModel):
    """POST /admin/creator-applications/{id}/approve body."""

    model_config = ConfigDict(extra="forbid")
    review_notes: Note = Field(default="", validation_alias=AliasChoices("reviewNotes", "review_notes"))


class RejectBody(BaseModel):
    """POST /admin/creator-applications/{id}/reject body."""

    model_config = ConfigDict(extra="forbid")
    reason: Note = ""


class QueueBody(BaseModel):
    """POST /admin/creator-applications/{id}/queue body."""

    model_config = ConfigDict(extra="forbid")
    notes: Note = ""


def _locked(conn: Conn, application_id: UUID) -> tuple[dict[str, Any], dict[str, Any]]:
    """The application and its user, both locked (user first, as role changes lock them)."""
    owner = conn.execute(
        "SELECT user_id FROM creator_applications WHERE id = %(id)s", {"id": application_id}
    ).fetchone()
    if owner is None:
        raise NotFound("Application not found", code="APPLICATION_NOT_FOUND")
    target = lock_target(conn, owner["user_id"])
    conn.execute("SELECT 1 FROM creator_applications WHERE id = %(id)s FOR UPDATE", {"id": application_id})
    return _read(conn, application_id), target


def _read(conn: Conn, application_id: UUID) -> dict[str, Any]:
    row = conn.execute(f"{APPLICATION_SELECT} WHERE a.id = %(id)s", {"id": application_id}).fetchone()
    assert row is not None  # read under the lock taken in _locked
    return dict(row)


def _refuse_if_decided(app: dict[str, Any], wanted: str) -> None:
    if app["status"] in ("approved", "rejected"):
        raise Conflict(
            f"This application was already {app['status']}",
            code="APPLICATION_DECIDED",
            applicationStatus=app["status"],
            requested=wanted,
        )


def approve(conn: Conn, admin: User, application_id: UUID, body: ApproveBody) -> dict[str, Any]:
    """Approve: the applicant becomes a creator (an admin stays an admin), their category fills an empty one."""
    app, target = _locked(conn, application_id)
    if app["status"] == "approved":
        return {"application": application_out(app), "message": "Application approved", "replayed": True}
    _refuse_if_decided(app, "approved")
    role = "admin" if target["role"] == "admin" else "creator"
    user = write_role(conn, admin, target, role, True, app["category"])
    conn.execute(
        """UPDATE creator_applications SET status = 'approved', reviewed_at = now(), reviewed_by = %(admin)s,
                  review_notes = coalesce(nullif(%(notes)s, ''), review_notes)
           WHERE id = %(id)s""",
        {"admin": admin.id, "notes": body.review_notes, "id": application_id},
    )
    audit.record(
        conn,
        admin.id,
        audit.APPROVE_APPLICATION,
        target_user_id=target["id"],
        details={
            "applicationId": str(application_id),
            "reviewNotes": body.review_notes,
            "from": {"role": target["role"], "is_creator": target["is_creator"]},
            "to": {"role": role, "is_creator": True},
        },
    )
    return {
        "application": application_out(_read(conn, application_id)),
        "user": user,
        "message": "Application approved",
    }


def reject(conn: Conn, admin: User, application_id: UUID, body: RejectBody) -> dict[str, Any]:
    """Reject a pending or queued application; the user's role is not touched."""
    app, target = _locked(conn, application_id)
    if app["status"] == "rejected":
        return {"application": application_out(app), "message": "Application rejected", "replayed": True}
    _refuse_if_decided(app, "rejected")
    conn.execute(
        """UPDATE creator_applications SET status = 'rejected', reviewed_at = now(), reviewed_by = %(admin)s,
                  rejection_reason = nullif(%(reason)s, '')
           WHERE id = %(id)s""",
        {"admin": admin.id, "reason": body.reason, "id": application_id},
    )
    audit.record(
        conn,
        admin.id,
        audit.REJECT_APPLICATION,
        target_user_id=target["id"],
        details={"applicationId": str(application_id), "reason": body.reason},
    )
    return {"application": application_out(_read(conn, application_id)), "message": "Application rejected"}


def queue(conn: Conn, admin: User, application_id: UUID, body: QueueBody) -> dict[str, Any]:
    """Put a pending application aside for later review (it stays open; approve or reject it later)."""
    app, target = _locked(conn, application_id)
    if app["status"] == "queued":
        return {"application": application_out(app), "message": "Application queued", "replayed": True}
    _refuse_if_decided(app, "queued")
    conn.execute(
        """UPDATE creator_applications SET queued_at = now(), review_notes = coalesce(nullif(%(notes)s, ''), review_notes)
           WHERE id = %(id)s""",
        {"notes": body.notes, "id": application_id},
    )
    audit.record(
        conn,
        admin.id,
        audit.QUEUE_APPLICATION,
        target_user_id=target["id"],
        details={"applicationId": str(application_id), "notes": body.notes},
    )
    return {"application": application_out(_read(conn, application_id)), "message": "Application queued"}

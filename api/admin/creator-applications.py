"""GET /api/admin/creator-applications: creator applications with the dashboard's filters and paging (admins)."""

from typing import Annotated, Any

from fastapi import Query

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/creator-applications")
def list_applications(
    _admin: AdminUser,
    conn: DbConn,
    status: admin.StatusFilter | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    search: Annotated[str | None, Query(max_length=100)] = None,
    specialty: Annotated[str | None, Query(max_length=50)] = None,
    location: Annotated[str | None, Query(max_length=50)] = None,
    date_range: Annotated[admin.DateRange | None, Query(alias="dateRange")] = None,
) -> dict[str, Any]:
    """{applications: [{id, username, email, profilePic, status, submittedAt, reviewedAt, bio, specialties,
    socialMedia, userStats: {totalSpent, memberSince, sessionCount, avgRating}, ...}], total, page, limit, counts}."""
    filters = admin.ApplicationFilters.model_validate(
        {
            "status": status,
            "search": search,
            "specialty": specialty,
            "location": location,
            "dateRange": date_range,
        }
    )
    return admin.list_applications(conn, filters, page=page, limit=limit)

"""GET /api/admin/analytics/dashboard: daily revenue and user growth, top creators, the signup funnel (admins)."""

from typing import Annotated, Any

from fastapi import Query

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/analytics/dashboard")
def analytics_dashboard(
    _admin: AdminUser, conn: DbConn, days: Annotated[int, Query(ge=1, le=365)] = 30
) -> dict[str, Any]:
    """{revenue: [{date, amount, amountCents, tokens, purchases}], growth: [{date, users, newUsers, newCreators}],
    performance: [{creator, creatorId, earnings, sessions, rating}], conversions: [{stage, name, value, rate}]}."""
    return admin.dashboard(conn, days=days)

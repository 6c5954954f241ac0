"""GET /api/admin/stats: the admin dashboard's numbers (admins only)."""

from typing import Any

from lib import admin
from lib.auth import AdminUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/admin/stats")
def admin_stats(_admin: AdminUser, conn: DbConn) -> dict[str, Any]:
    """{totalUsers, activeCreators, activeSessions, liveStreams, pendingApplications, revenue: {todayCents}}."""
    return admin.stats(conn)

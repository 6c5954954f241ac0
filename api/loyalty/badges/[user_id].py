"""GET /api/loyalty/badges/{user_id}?creatorId=: a fan's loyalty badge with a creator (DualBadgeDisplay)."""

from uuid import UUID

from lib import analytics, calls
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/loyalty/badges/{user_id}")
def loyalty_badges(
    user_id: UUID,
    user: CurrentUser,
    conn: DbConn,
    creatorId: UUID | None = None,
) -> analytics.BadgesOut:
    """{badges: {loyalty: {level, emoji, totalTokens, totalSpend, supportDays, perks}, subscription}, data: {badges}}.

    Without creatorId: your own level across creators, or someone's level with you. Amounts only to the fan, the
    creator and admins."""
    return analytics.badges(conn, user, user_id, creatorId, calls.utcnow())

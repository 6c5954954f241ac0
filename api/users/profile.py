"""GET /api/users/profile[?uid=] (mine, or another user's public subset); PUT, PATCH or POST (a partial update)."""

from typing import Any
from uuid import UUID

from lib import users
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/users/profile")
def get_profile(user: CurrentUser, conn: DbConn, uid: UUID | None = None) -> dict[str, Any]:
    """The flat profile (`price_per_min` in USD); `token_balance`, `state`, `country` only in my own."""
    return users.profile(conn, uid or user.id, own=uid is None or uid == user.id)


# The frontend saves with all three methods (PricingRatesModal PUT, HybridCreatorDashboard PATCH, ImprovedProfile
# POST); each is the same partial update.
@app.api_route("/api/users/profile", methods=["PUT", "PATCH", "POST"])
def update_profile(update: users.ProfileUpdate, user: CurrentUser, conn: DbConn) -> dict[str, Any]:
    """{success, user, ignored, data}: is_creator, role, email, token_balance and unknown fields never apply."""
    return users.update_profile(conn, user, update)

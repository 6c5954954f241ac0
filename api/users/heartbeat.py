"""POST /api/users/heartbeat: keep me online in the directory (call every minute while the app is open)."""

from typing import Any

from lib import presence
from lib.auth import CurrentUser
from lib.http import create_app

app = create_app()


@app.post("/api/users/heartbeat")
def heartbeat(user: CurrentUser) -> dict[str, Any]:
    """{online, ttlSeconds}: online is false only when the presence store is unavailable."""
    return presence.heartbeat(user.id, creator=user.is_creator)

"""POST /api/auth/sync-metadata: copy my role, isCreator, isAdmin and username into my Supabase user_metadata."""

from typing import Any

from lib import supabase_admin
from lib.auth import CurrentUser
from lib.http import create_app

app = create_app(rate_limit="auth")


@app.post("/api/auth/sync-metadata")
def sync_metadata(user: CurrentUser) -> dict[str, Any]:
    """{metadata: {role, isCreator, isAdmin, username}} as now stored in Supabase."""
    return supabase_admin.push_identity(user)

"""Applications to become a creator: one pending at a time, approved by an admin."""

from __future__ import annotations

from typing import Annotated, Any

from psycopg.types.json import Jsonb
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from lib.db import Conn
from lib.errors import Conflict
from lib.users import User


class CreatorApplication(BaseModel):
    """POST /users/apply-creator body; fields the form sends beyond these (is_creator included) are ignored."""

    model_config = ConfigDict(extra="ignore")

    bio: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None
    category: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = Field(
        default=None, validation_alias=AliasChoices("category", "creatorType", "creator_type")
    )
    experience: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    social_links: dict[Annotated[str, StringConstraints(max_length=40)], Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=dict, max_length=10, validation_alias=AliasChoices("socialLinks", "social_links", "socialMedia")
    )  # fmt: skip


def apply(conn: Conn, user: User, application: CreatorApplication) -> dict[str, Any]:
    """Record a pending application (one at a time); an admin approves it with PUT /admin/users/{uid}/role."""
    if user.is_creator:
        raise Conflict("You are already a creator", code="ALREADY_CREATOR")
    row = conn.execute(
        """INSERT INTO creator_applications (user_id, bio, category, experience, social_links)
           VALUES (%(u)s, %(bio)s, %(cat)s, %(exp)s, %(links)s)
           ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING
           RETURNING id, status, submitted_at""",
        {
            "u": user.id,
            "bio": application.bio,
            "cat": application.category,
            "exp": application.experience,
            "links": Jsonb(application.social_links),
        },
    ).fetchone()
    if row is None:
        pending = conn.execute(
            "SELECT id FROM creator_applications WHERE user_id = %(u)s AND status = 'pending'", {"u": user.id}
        ).fetchone()
        raise Conflict(
            "Your application is already pending review",
            code="APPLICATION_PENDING",
            applicationId=str(pending["id"]) if pending else None,
        )
    return {"application": {"id": row["id"], "status": row["status"], "submittedAt": row["submitted_at"]}}

"""Users: the row behind every Supabase identity, usernames, and the profile a user edits."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from uuid import UUID

import psycopg
from psycopg import sql
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from lib.config import get_settings
from lib.db import Conn
from lib.errors import Conflict, NotFound, Unprocessable

USERNAME_RE = re.compile(r"^[a-z0-9_]{3,30}$")
# Names a user could pass off as the platform's own.
RESERVED_USERNAMES = frozenset(
    {"admin", "administrator", "api", "digis", "help", "moderator", "official", "root", "security",
     "staff", "support", "system", "team", "null", "undefined", "me", "settings", "login", "signup"}
)  # fmt: skip
MIN_RATE, MAX_RATE = 1, 10_000

_USER_COLUMNS = "id, email, username, display_name, role, is_creator, token_balance"
_PROFILE_COLUMNS = (
    "id, username, display_name, bio, profile_pic_url, banner_url, creator_type, is_creator, role, "
    "video_price, voice_price, message_price, stream_price, text_message_price, image_message_price, "
    "video_message_price, voice_memo_price, interests, languages, state, country, show_token_balance, token_balance"
)
_OWN_ONLY = ("token_balance", "state", "country")  # never in someone else's view of a profile


class User(BaseModel):
    """The authenticated user as the functions see it."""

    id: UUID
    email: str | None
    username: str
    display_name: str | None
    role: str
    is_creator: bool
    token_balance: int

    @property
    def is_admin(self) -> bool:
        """Admins are set in the database (users.role = 'admin')."""
        return self.role == "admin"


# ---- usernames ---------------------------------------------------------------------------------------------


def normalize_username(raw: str) -> str:
    """How a username is stored and compared: trimmed, lower-case."""
    return raw.strip().lower()


def username_problem(name: str) -> str | None:
    """'invalid' or 'reserved' for a normalized username that cannot be used, else None."""
    if not USERNAME_RE.fullmatch(name):
        return "invalid"
    if name in RESERVED_USERNAMES:
        return "reserved"
    return None


def username_from_email(email: str | None) -> str:
    """A valid username base from an email's local part."""
    local = (email or "").split("@", 1)[0].lower()
    base = re.sub(r"[^a-z0-9_]+", "_", local).strip("_")[:24]
    if len(base) < 3:
        base = (base + "_user")[:24].strip("_") or "user"
    return base


def username_owner(conn: Conn, name: str) -> UUID | None:
    """Who holds this username (case-insensitively), if anyone."""
    row = conn.execute("SELECT id FROM users WHERE lower(username) = lower(%(u)s)", {"u": name}).fetchone()
    return row["id"] if row else None


def check_username(conn: Conn, raw: str, requester: UUID | None = None) -> dict[str, Any]:
    """GET /users/check-username: {available, username, reason} (reason: invalid, reserved, taken or null)."""
    name = normalize_username(raw)[:64]
    problem = username_problem(name)
    if problem is None:
        owner = username_owner(conn, name)
        if owner is not None and owner != requester:
            problem = "taken"
    return {"available": problem is None, "username": name, "reason": problem}


# ---- the row -----------------------------------------------------------------------------------------------


def get(conn: Conn, user_id: UUID | str) -> User | None:
    """One user by id."""
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()  # noqa: S608
    return User.model_validate(row) if row else None


def get_or_create(
    conn: Conn,
    user_id: UUID | str,
    email: str | None,
    *,
    preferred_username: str | None = None,
    display_name: str | None = None,
) -> tuple[User, bool]:
    """The user's row, created on first sight (race-safe); returns (user, created)."""
    existing = get(conn, user_id)
    if existing:
        return existing, False
    for username in _username_candidates(email, preferred_username):
        # ON CONFLICT DO NOTHING covers both a concurrent first request (same id) and a taken username; a
        # concurrent insert of the same id makes this wait for its commit, then see its row.
        row = conn.execute(
            f"""INSERT INTO users (id, email, username, display_name)
                VALUES (%(id)s, %(email)s, %(username)s, %(display)s)
                ON CONFLICT DO NOTHING
                RETURNING {_USER_COLUMNS}""",  # noqa: S608
            {"id": user_id, "email": email, "username": username, "display": display_name or username},
        ).fetchone()
        if row:
            return User.model_validate(row), True
        existing = get(conn, user_id)
        if existing:
            return existing, False
    raise RuntimeError(
        "could not allocate a username"
    )  # 8 random suffixes all taken: astronomically unlikely


def _username_candidates(email: str | None, preferred: str | None) -> list[str]:
    names = []
    if preferred and username_problem(normalize_username(preferred)) is None:
        names.append(normalize_username(preferred))
    base = username_from_email(email)
    if username_problem(base) is None:
        names.append(base)
    names += [f"{base[:23]}_{secrets.randbelow(10**6):06d}" for _ in range(8)]
    return names


def sync(conn: Conn, claims: dict[str, Any], metadata: dict[str, Any] | None) -> tuple[User, bool]:
    """POST /auth/sync-user: get-or-create from the verified claims; sign-up metadata only names a new user.

    The email always comes from the token (a body cannot claim someone else's address); privileged metadata
    (role, isCreator, ...) is never read.
    """
    hints = {**_as_dict(claims.get("user_metadata")), **_as_dict(metadata)}
    email = claims.get("email")
    email = email if isinstance(email, str) and email else None
    display = next(
        (str(hints[k]).strip()[:50] for k in ("display_name", "full_name", "name") if hints.get(k)), None
    )
    preferred = hints.get("username") if isinstance(hints.get("username"), str) else None
    user, created = get_or_create(
        conn, claims["sub"], email, preferred_username=preferred, display_name=display
    )
    if not created and email and user.email != email:
        conn.execute(
            "UPDATE users SET email = %(e)s, updated_at = now() WHERE id = %(id)s",
            {"e": email, "id": user.id},
        )
        user = user.model_copy(update={"email": email})
    return user, created


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---- profiles ----------------------------------------------------------------------------------------------


def profile(conn: Conn, user_id: UUID, *, own: bool) -> dict[str, Any]:
    """GET /users/profile: the flat profile; balance and location only for the user themself."""
    row = conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()  # noqa: S608
    if row is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return _profile_body(row, own=own)


def price_usd(tokens: int | None) -> float | None:
    """A token price in USD (tokens x TOKEN_USD_VALUE), as the frontend's call screens read `price_per_min`."""
    return None if tokens is None else float(tokens * get_settings().token_usd_value)


def _profile_body(row: dict[str, Any], *, own: bool) -> dict[str, Any]:
    body = dict(row)
    body["price_per_min"] = price_usd(row["video_price"])
    if not own:
        for name in _OWN_ONLY:
            body.pop(name)
    return body


def http_url(value: str | None) -> str | None:
    """An image URL as stored: http(s), at most 2048 characters; "" means none."""
    if value is None or value == "":
        return None
    if len(value) > 2048 or not re.fullmatch(r"https?://[^\s\"'<>]+", value):
        raise ValueError("an http(s) URL of at most 2048 characters")
    return value


def _token_price(low: int) -> Any:
    """A price field: a JSON integer of tokens from `low` to MAX_RATE; a float, string or bool is refused."""

    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_RATE:
            raise ValueError(f"must be a whole number of tokens from {low} to {MAX_RATE}")
        return value

    return BeforeValidator(check)


# Calls are billed per minute, so a call rate is at least 1 token (lib/calls refuses a 0 rate as "no calls");
# messages and streams may be free (0).
CallRate = Annotated[int, _token_price(MIN_RATE)]
ItemPrice = Annotated[int, _token_price(0)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Place = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Tags = Annotated[list[ShortText], Field(max_length=20)]


class ProfileUpdate(BaseModel):
    """PUT|PATCH|POST /users/profile: every field optional; anything else sent (is_creator, role, ...) is ignored."""

    model_config = ConfigDict(extra="allow")

    username: str | None = None
    display_name: ShortText | None = None
    bio: Annotated[str, StringConstraints(max_length=1000)] | None = None
    profile_pic_url: str | None = None
    banner_url: str | None = None
    creator_type: ShortText | None = None
    interests: Tags | None = None
    languages: Tags | None = None
    state: Place | None = None
    country: Place | None = None
    show_token_balance: StrictBool | None = None
    video_price: CallRate | None = None
    voice_price: CallRate | None = None
    message_price: ItemPrice | None = None
    stream_price: ItemPrice | None = None
    text_message_price: ItemPrice | None = None
    image_message_price: ItemPrice | None = None
    video_message_price: ItemPrice | None = None
    voice_memo_price: ItemPrice | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = normalize_username(value)
        problem = username_problem(name)
        if problem == "reserved":
            raise ValueError("this username is reserved")
        if problem:
            raise ValueError("3-30 characters: lower-case letters, digits and _")
        return name

    @field_validator("profile_pic_url", "banner_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("state", "country")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("interests", "languages")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(v for v in value if v))


PRICE_FIELDS = ("video_price", "voice_price", "message_price", "stream_price", "text_message_price",
                "image_message_price", "video_message_price", "voice_memo_price")  # fmt: skip
_NOT_NULL = {"username", "show_token_balance", "interests", "languages", *PRICE_FIELDS}


def update_profile(conn: Conn, user: User, update: ProfileUpdate) -> dict[str, Any]:
    """Apply the fields sent; returns {success, user, ignored} (+ a `data` mirror). Prices are a creator's only."""
    ignored = sorted(update.model_extra or {})
    changes: dict[str, Any] = {}
    for name in sorted(update.model_fields_set - set(update.model_extra or {})):
        if name in PRICE_FIELDS and not user.is_creator:
            ignored.append(name)
            continue
        value = getattr(update, name)
        if value is None and name in _NOT_NULL:
            raise Unprocessable(
                f"{name} cannot be null", errors=[{"field": name, "message": "cannot be null"}]
            )
        changes[name] = value
    if "username" in changes and changes["username"] != user.username:
        owner = username_owner(conn, changes["username"])
        if owner is not None and owner != user.id:
            raise Conflict("That username is taken", code="USERNAME_TAKEN")
    if changes:
        _write(conn, user.id, changes)
    mine = profile(conn, user.id, own=True)
    # HybridCreatorDashboard reads `response.data.success` from this bare body.
    return {
        "success": True,
        "user": mine,
        "ignored": sorted(set(ignored)),
        "data": {"success": True, "user": mine},
    }


def _write(conn: Conn, user_id: UUID, changes: dict[str, Any]) -> None:
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes
    )
    query = sql.SQL("UPDATE users SET {}, updated_at = now() WHERE id = %(id)s").format(assignments)
    try:
        conn.execute(query, {**changes, "id": user_id})
    except psycopg.errors.UniqueViolation as exc:  # lost a race for the same username
        raise Conflict("That username is taken", code="USERNAME_TAKEN") from exc


# ---- sign-up -----------------------------------------------------------------------------------------------


class CreateProfile(BaseModel):
    """POST /auth/create-profile body (mobile sign-up); `accountType` never makes anyone a creator."""

    model_config = ConfigDict(extra="ignore")

    username: Annotated[str, StringConstraints(max_length=100)] | None = None
    displayName: ShortText | None = None
    bio: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None
    profilePicture: str | None = None
    accountType: Annotated[str, StringConstraints(max_length=20)] | None = None

    @field_validator("profilePicture")
    @classmethod
    def _picture(cls, value: str | None) -> str | None:
        return http_url(value)


def create_profile(conn: Conn, claims: dict[str, Any], body: CreateProfile) -> dict[str, Any]:
    """Get-or-create my row with the chosen name; never fails on the name (a taken or malformed one is replaced).

    Idempotent: a retry, or a row an earlier request already created, gets the same name when it is free.
    """
    email = claims.get("email")
    email = email if isinstance(email, str) and email else None
    wanted = username_from_email(body.username) if body.username else None
    user, created = get_or_create(
        conn, claims["sub"], email, preferred_username=wanted, display_name=body.displayName
    )
    changes: dict[str, Any] = {}
    if not created:
        renamed = wanted is not None and wanted != user.username and username_problem(wanted) is None
        if renamed and wanted is not None and username_owner(conn, wanted) is None:
            changes["username"] = wanted
        if body.displayName:
            changes["display_name"] = body.displayName
    if body.bio:
        changes["bio"] = body.bio
    if body.profilePicture:
        changes["profile_pic_url"] = body.profilePicture
    if changes:
        _write(conn, user.id, changes)
        user = get(conn, user.id) or user
    return {"success": True, "user": user.model_dump(mode="json"), "isNewUser": created}

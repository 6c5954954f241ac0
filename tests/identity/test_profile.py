"""GET|PUT /users/profile and GET /users/check-username/{username}."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib import db
from tests import conftest
from tests.conftest import MakeUser
from tests.support import functions
from tests.support.tokens import bearer, make_token

PROFILE = "users/profile.py"
CHECK = "users/check-username/[username].py"
PUBLIC_FIELDS = {
    "id", "username", "display_name", "bio", "profile_pic_url", "banner_url", "creator_type", "is_creator", "role",
    "video_price", "voice_price", "message_price", "stream_price", "price_per_min", "show_token_balance",
    "text_message_price", "image_message_price", "video_message_price", "voice_memo_price", "interests", "languages",
}  # fmt: skip
OWN_ONLY = {"token_balance", "state", "country"}


def _row(user_id: uuid.UUID) -> dict[str, Any]:
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    assert row is not None
    return dict(row)


def _put(user: conftest.TestUser, body: Any) -> Any:
    return functions.client(PROFILE).put("/api/users/profile", headers=user.headers, json=body)


def test_own_profile_is_flat_and_includes_the_balance(make_user: MakeUser) -> None:
    creator = make_user(role="creator", balance=40)
    r = functions.client(PROFILE).get("/api/users/profile", headers=creator.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == PUBLIC_FIELDS | OWN_ONLY
    assert body["token_balance"] == 40 and body["is_creator"] is True
    assert body["video_price"] == 10 and body["price_per_min"] == 0.5  # USD: 10 tokens x 0.05


def test_another_users_profile_is_the_public_subset(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=5), make_user(role="creator", balance=99)
    r = functions.client(PROFILE).get(f"/api/users/profile?uid={creator.id}", headers=fan.headers)
    assert r.status_code == 200, r.text
    assert set(r.json()) == PUBLIC_FIELDS
    assert "email" not in r.json() and not OWN_ONLY & set(r.json())


def test_profile_of_an_unknown_uid_is_404_and_a_bad_uid_422(make_user: MakeUser) -> None:
    fan = make_user()
    client = functions.client(PROFILE)
    assert client.get(f"/api/users/profile?uid={uuid.uuid4()}", headers=fan.headers).status_code == 404
    assert client.get("/api/users/profile?uid=nope", headers=fan.headers).status_code == 422


def test_partial_update_changes_only_the_fields_sent(make_user: MakeUser) -> None:
    fan = make_user()
    before = _row(fan.id)
    r = _put(fan, {"bio": "Hello there", "display_name": "  Fan Person  "})
    assert r.status_code == 200, r.text
    after = _row(fan.id)
    assert (after["bio"], after["display_name"]) == ("Hello there", "Fan Person")
    assert after["username"] == before["username"] and after["profile_pic_url"] == before["profile_pic_url"]
    assert r.json()["user"]["bio"] == "Hello there" and r.json()["ignored"] == []


def test_explicit_null_clears_an_optional_field(make_user: MakeUser) -> None:
    fan = make_user()
    assert _put(fan, {"bio": "temp"}).status_code == 200
    assert _put(fan, {"bio": None}).status_code == 200
    assert _row(fan.id)["bio"] is None


def test_mass_assignment_of_privileged_fields_changes_nothing(make_user: MakeUser) -> None:
    fan = make_user(balance=7)
    other = make_user()
    before, other_before = _row(fan.id), _row(other.id)
    r = _put(
        fan,
        {
            "is_creator": True,
            "role": "admin",
            "token_balance": 1_000_000,
            "id": str(other.id),
            "email": "takeover@example.test",
            "created_at": "2000-01-01T00:00:00Z",
            "isAdmin": True,
            "bio": "still me",
        },
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["ignored"]) >= {"is_creator", "role", "token_balance", "id", "email", "isAdmin"}
    after = _row(fan.id)
    for field in ("is_creator", "role", "token_balance", "email", "created_at", "id"):
        assert after[field] == before[field], field
    assert after["bio"] == "still me"
    assert _row(other.id) == other_before


def test_a_fan_cannot_set_prices_but_a_creator_can(make_user: MakeUser) -> None:
    fan, creator = make_user(), make_user(role="creator")
    r = _put(fan, {"video_price": 50})
    assert r.status_code == 200 and "video_price" in r.json()["ignored"]
    assert _row(fan.id)["video_price"] is None
    r = _put(creator, {"video_price": 50, "voice_price": 20})
    assert r.status_code == 200, r.text
    assert (_row(creator.id)["video_price"], _row(creator.id)["voice_price"]) == (50, 20)


@pytest.mark.parametrize(
    "body",
    [
        {"video_price": 0},
        {"video_price": 10_001},
        {"video_price": 12.5},
        {"video_price": "12"},
        {"video_price": True},
        {"video_price": None},
        {"show_token_balance": "yes"},
        {"show_token_balance": None},
        {"username": None},
        {"bio": "x" * 1001},
        {"display_name": "x" * 51},
        {"profile_pic_url": "javascript:alert(1)"},
        {"banner_url": "ftp://example.test/a.png"},
    ],
)
def test_invalid_values_are_422_and_change_nothing(make_user: MakeUser, body: dict[str, Any]) -> None:
    creator = make_user(role="creator")
    before = _row(creator.id)
    r = _put(creator, body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert _row(creator.id) == before


@pytest.mark.parametrize("name", ["ab", "a" * 31, "has space", "dash-name", "émile", "admin", "Support"])
def test_invalid_or_reserved_username_is_422(make_user: MakeUser, name: str) -> None:
    fan = make_user()
    r = _put(fan, {"username": name})
    assert r.status_code == 422, r.text
    assert _row(fan.id)["username"] == fan.username


def test_username_is_stored_lower_case_and_unique_case_insensitively(make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    r = _put(alice, {"username": "  Wonder_Land  "})
    assert r.status_code == 200, r.text
    assert _row(alice.id)["username"] == "wonder_land"
    taken = _put(bob, {"username": "WONDER_LAND"})
    assert taken.status_code == 409 and taken.json()["code"] == "USERNAME_TAKEN"
    assert _row(bob.id)["username"] == bob.username
    assert _put(alice, {"username": "wonder_land"}).status_code == 200, "keeping one's own name is fine"


def test_profile_needs_a_token(clean: None) -> None:
    assert functions.client(PROFILE).get("/api/users/profile").status_code == 401
    assert functions.client(PROFILE).put("/api/users/profile", json={"bio": "x"}).status_code == 401


# ---- check-username ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "available", "reason", "normalized"),
    [
        ("fresh_name", True, None, "fresh_name"),
        ("Fresh_Name", True, None, "fresh_name"),
        ("ab", False, "invalid", "ab"),
        ("bad name", False, "invalid", "bad name"),
        ("admin", False, "reserved", "admin"),
    ],
)
def test_check_username(clean: None, raw: str, available: bool, reason: str | None, normalized: str) -> None:
    r = functions.client(CHECK).get(f"/api/users/check-username/{raw}")
    assert r.status_code == 200, r.text
    assert r.json() == {"available": available, "username": normalized, "reason": reason}


def test_check_username_sees_taken_names_case_insensitively_but_not_my_own(make_user: MakeUser) -> None:
    owner = make_user(username="holder_1")
    client = functions.client(CHECK)
    assert client.get("/api/users/check-username/HOLDER_1").json()["reason"] == "taken"
    mine = client.get("/api/v1/users/check-username/holder_1", headers=owner.headers).json()
    assert mine["available"] is True
    bad_token = client.get("/api/users/check-username/holder_1", headers=bearer(make_token("x"))).json()
    assert bad_token["reason"] == "taken", "an invalid token is just an anonymous caller here"


def test_check_username_via_vercel_destination_path(make_user: MakeUser) -> None:
    r = functions.client(CHECK).get("/api/users/check-username/[username]?username=some_name")
    assert r.status_code == 200 and r.json()["username"] == "some_name"

"""First requests, POST /auth/sync-user and POST /auth/sync-metadata (against the Supabase stand-in)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from lib import db, users
from localdev.supabase_standin import SupabaseStandin
from tests.conftest import MakeUser
from tests.identity.conftest import SERVICE_ROLE_KEY, repoint, run_parallel, serve
from tests.support import functions
from tests.support.tokens import bearer, make_token

SYNC_USER = "auth/sync-user.py"
SYNC_METADATA = "auth/sync-metadata.py"


def _count(user_id: uuid.UUID) -> int:
    with db.transaction() as conn:
        row = conn.execute("SELECT count(*) AS n FROM users WHERE id = %(id)s", {"id": user_id}).fetchone()
    return int(row["n"]) if row else 0


def test_two_concurrent_first_transactions_make_one_row(clean: None) -> None:
    user_id = uuid.uuid4()
    first_inserted = threading.Event()
    outcomes: list[tuple[users.User, bool]] = []

    def first() -> None:
        with db.transaction() as conn:
            outcomes.append(users.get_or_create(conn, user_id, "twin@example.test"))
            first_inserted.set()
            time.sleep(0.3)  # hold the uncommitted row while the second transaction tries its insert

    def second() -> None:
        assert first_inserted.wait(5)
        with db.transaction() as conn:
            outcomes.append(users.get_or_create(conn, user_id, "twin@example.test"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(created for _, created in outcomes) == [False, True]
    assert {u.id for u, _ in outcomes} == {user_id} and len({u.username for u, _ in outcomes}) == 1
    assert _count(user_id) == 1


def test_concurrent_first_requests_over_http_create_one_row(clean: None) -> None:
    user_id = uuid.uuid4()
    token = make_token(user_id, email="racer@example.test")
    with serve(functions.load_function(SYNC_USER)) as base, httpx.Client(base_url=base, timeout=20) as client:
        answers = run_parallel(
            8, lambda i: client.post("/api/auth/sync-user", headers=bearer(token), json={})
        )
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
    assert sum(r.json()["isNewUser"] for r in answers) == 1
    assert len({r.json()["user"]["username"] for r in answers}) == 1
    assert _count(user_id) == 1


def test_new_users_with_the_same_email_local_part_get_unique_usernames(clean: None) -> None:
    client = functions.client(SYNC_USER)
    names = set()
    for domain in ("a.test", "b.test", "c.test"):
        r = client.post(
            "/api/auth/sync-user", headers=bearer(make_token(uuid.uuid4(), email=f"Jane.Doe@{domain}"))
        )
        assert r.status_code == 200, r.text
        names.add(r.json()["user"]["username"])
    assert len(names) == 3
    assert "jane_doe" in names
    assert all(users.USERNAME_RE.fullmatch(n) for n in names)


def test_sync_user_returns_the_contract_shape_and_is_idempotent(clean: None) -> None:
    user_id = uuid.uuid4()
    headers = bearer(make_token(user_id, email="fan@example.test"))
    client = functions.client(SYNC_USER)
    first = client.post("/api/v1/auth/sync-user", headers=headers, json={"email": "fan@example.test"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["isNewUser"] is True
    assert body["user"] == {
        "id": str(user_id),
        "email": "fan@example.test",
        "username": "fan",
        "display_name": "fan",
        "role": "fan",
        "is_creator": False,
        "token_balance": 0,
    }
    again = client.post("/api/auth/sync-user", headers=headers)
    assert again.status_code == 200 and again.json()["isNewUser"] is False
    assert again.json()["user"] == body["user"]


def test_sync_user_uses_signup_metadata_but_never_privileged_fields(clean: None) -> None:
    user_id = uuid.uuid4()
    r = functions.client(SYNC_USER).post(
        "/api/auth/sync-user",
        headers=bearer(make_token(user_id, email="x@example.test")),
        json={
            "email": "someone-else@example.test",
            "metadata": {"username": "Star_Name", "display_name": "Star", "role": "admin", "isCreator": True},
            "role": "admin",
            "is_creator": True,
            "token_balance": 10**6,
        },
    )
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert (user["username"], user["display_name"]) == ("star_name", "Star")
    assert (user["role"], user["is_creator"], user["token_balance"]) == ("fan", False, 0)
    assert user["email"] == "x@example.test", "the email comes from the token, not the body"


def test_sync_user_falls_back_when_the_wanted_username_is_taken(clean: None, make_user: MakeUser) -> None:
    make_user(username="taken_name")
    r = functions.client(SYNC_USER).post(
        "/api/auth/sync-user",
        headers=bearer(make_token(uuid.uuid4(), email="newbie@example.test")),
        json={"metadata": {"username": "TAKEN_NAME"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "newbie"


def test_sync_user_follows_an_email_change_in_the_token(clean: None, make_user: MakeUser) -> None:
    fan = make_user()
    r = functions.client(SYNC_USER).post(
        "/api/auth/sync-user", headers=bearer(make_token(fan.id, email="new-address@example.test"))
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == "new-address@example.test"


def test_sync_user_declares_the_auth_rate_limit_bucket(clean: None) -> None:
    headers = bearer(make_token(uuid.uuid4()))
    r = functions.client(SYNC_USER).post("/api/auth/sync-user", headers=headers)
    assert r.status_code == 200
    assert r.headers["ratelimit-limit"] == "20"


# ---- sync-metadata ------------------------------------------------------------------------------------------


def test_sync_metadata_puts_the_identity_into_supabase_user_metadata(
    clean: None, make_user: MakeUser, supabase: SupabaseStandin
) -> None:
    creator = make_user(role="creator")
    r = functions.client(SYNC_METADATA).post("/api/auth/sync-metadata", headers=creator.headers)
    assert r.status_code == 200, r.text
    expected = {"role": "creator", "isCreator": True, "isAdmin": False, "username": creator.username}
    assert r.json() == {"metadata": expected}
    (call,) = supabase.requests("/auth/v1/admin/users/")
    assert call["method"] == "PUT"
    assert call["path"] == f"/auth/v1/admin/users/{creator.id}"
    assert call["headers"]["apikey"] == SERVICE_ROLE_KEY
    assert call["headers"]["authorization"] == f"Bearer {SERVICE_ROLE_KEY}"
    assert call["headers"]["content-type"] == "application/json"
    assert call["body"] == {"user_metadata": expected}
    assert call["status"] == 200
    assert supabase.users[str(creator.id)]["user_metadata"] == expected


def test_sync_metadata_reports_supabase_failure_as_a_gateway_error_not_a_logout(
    clean: None, make_user: MakeUser, supabase: SupabaseStandin
) -> None:
    fan = make_user()
    supabase.fail_next(500)
    r = functions.client(SYNC_METADATA).post("/api/auth/sync-metadata", headers=fan.headers)
    assert r.status_code == 502, r.text
    assert r.json()["code"] == "SUPABASE_ERROR"


def test_sync_metadata_with_a_wrong_service_role_key_is_a_502(
    clean: None, make_user: MakeUser, supabase: SupabaseStandin
) -> None:
    fan = make_user()
    supabase.service_role_key = "a-different-key"
    r = functions.client(SYNC_METADATA).post("/api/auth/sync-metadata", headers=fan.headers)
    assert r.status_code == 502, r.text


def test_sync_metadata_when_supabase_is_unreachable_is_503(clean: None, make_user: MakeUser) -> None:
    fan = make_user()
    repoint(SUPABASE_URL="http://127.0.0.1:1")
    try:
        token = make_token(fan.id)  # issued for the repointed project
        r = functions.client(SYNC_METADATA).post("/api/auth/sync-metadata", headers=bearer(token))
    finally:
        repoint(SUPABASE_URL="")
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "SUPABASE_UNAVAILABLE"


def test_sync_metadata_needs_a_token(clean: None) -> None:
    r = functions.client(SYNC_METADATA).post("/api/auth/sync-metadata")
    assert r.status_code == 401

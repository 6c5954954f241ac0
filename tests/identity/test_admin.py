"""Admin routes: the user list, role changes (approving creators) and the dashboard numbers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lib import admin, db
from tests.conftest import MakeUser
from tests.support import functions

USERS = "admin/users.py"
ROLE = "admin/users/[uid]/role.py"
STATS = "admin/stats.py"


def _sql(query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        cur = conn.execute(query, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def _role(user_id: uuid.UUID) -> tuple[str, bool]:
    (row,) = _sql("SELECT role, is_creator FROM users WHERE id = %(id)s", {"id": user_id})
    return row["role"], row["is_creator"]


def test_admin_lists_users_with_search_filters_and_paging(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    make_user(username="findable_fan")
    make_user(role="creator", username="some_creator")
    client = functions.client(USERS)
    everyone = client.get("/api/admin/users?limit=2", headers=boss.headers).json()
    assert everyone["total"] == 3 and len(everyone["users"]) == 2 and everyone["hasMore"] is True
    found = client.get("/api/admin/users?search=FINDABLE", headers=boss.headers).json()
    assert [u["username"] for u in found["users"]] == ["findable_fan"]
    assert set(found["users"][0]) >= {"id", "email", "username", "role", "is_creator", "token_balance"}
    make_user(role="system")
    listed = client.get("/api/admin/users", headers=boss.headers).json()
    assert listed["total"] == 3 and "system" not in {u["role"] for u in listed["users"]}, (
        "system is never listed"
    )
    creators = client.get("/api/admin/users?isCreator=true", headers=boss.headers).json()
    assert [u["username"] for u in creators["users"]] == ["some_creator"]
    wildcard = client.get("/api/admin/users?search=%25", headers=boss.headers).json()
    assert wildcard["total"] == 0, "LIKE wildcards in the search are literal"


def test_approving_a_creator_sets_is_creator_and_the_application(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user()
    r = functions.client("users/apply-creator.py").post(
        "/api/users/apply-creator", headers=fan.headers, json={}
    )
    assert r.status_code == 201
    r = functions.client(ROLE).put(
        f"/api/admin/users/{fan.id}/role", headers=boss.headers, json={"role": "creator"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["user"]["is_creator"] is True and r.json()["user"]["role"] == "creator"
    assert r.json()["application"]["status"] == "approved"
    assert _role(fan.id) == ("creator", True)
    assert _sql("SELECT status, reviewed_by FROM creator_applications") == [
        {"status": "approved", "reviewed_by": boss.id}
    ]
    (audit,) = _sql("SELECT admin_id, action, target_user_id, details FROM admin_actions")
    assert (audit["admin_id"], audit["action"], audit["target_user_id"]) == (boss.id, "set_role", fan.id)
    assert audit["details"]["to"] == {"role": "creator", "is_creator": True}


def test_setting_fan_rejects_a_pending_application_and_clears_is_creator(make_user: MakeUser) -> None:
    boss, creator = make_user(role="admin"), make_user(role="creator")
    r = functions.client(ROLE).put(
        f"/api/admin/users/{creator.id}/role", headers=boss.headers, json={"role": "fan"}
    )
    assert r.status_code == 200, r.text
    assert _role(creator.id) == ("fan", False)


def test_admin_role_keeps_creator_status_unless_told(make_user: MakeUser) -> None:
    boss, creator = make_user(role="admin"), make_user(role="creator")
    client = functions.client(ROLE)
    assert (
        client.put(
            f"/api/admin/users/{creator.id}/role", headers=boss.headers, json={"role": "admin"}
        ).status_code
        == 200
    )
    assert _role(creator.id) == ("admin", True)
    r = client.put(
        f"/api/admin/users/{creator.id}/role",
        headers=boss.headers,
        json={"role": "admin", "isCreator": False},
    )
    assert r.status_code == 200 and _role(creator.id) == ("admin", False)


@pytest.mark.parametrize(
    "body",
    [
        {"role": "system"},
        {"role": "superuser"},
        {"role": "creator", "is_creator": False},
        {"role": "fan", "is_creator": True},
        {"role": "creator", "token_balance": 100},
        {"role": "creator", "is_creator": "yes"},
        {},
    ],
)
def test_bad_role_changes_are_422_and_change_nothing(make_user: MakeUser, body: dict[str, Any]) -> None:
    boss, fan = make_user(role="admin"), make_user(balance=3)
    r = functions.client(ROLE).put(f"/api/admin/users/{fan.id}/role", headers=boss.headers, json=body)
    assert r.status_code == 422, r.text
    assert _role(fan.id) == ("fan", False)
    assert _sql("SELECT token_balance FROM users WHERE id = %(id)s", {"id": fan.id}) == [{"token_balance": 3}]


def test_unknown_user_is_404_system_account_403_and_self_demotion_409(make_user: MakeUser) -> None:
    boss, system = make_user(role="admin"), make_user(role="system")
    client = functions.client(ROLE)
    assert (
        client.put(
            f"/api/admin/users/{uuid.uuid4()}/role", headers=boss.headers, json={"role": "fan"}
        ).status_code
        == 404
    )
    assert (
        client.put(
            f"/api/admin/users/{system.id}/role", headers=boss.headers, json={"role": "admin"}
        ).status_code
        == 403
    )
    r = client.put(f"/api/admin/users/{boss.id}/role", headers=boss.headers, json={"role": "fan"})
    assert r.status_code == 409 and r.json()["code"] == "CANNOT_DEMOTE_SELF"
    assert _role(boss.id) == ("admin", False) and _role(system.id) == ("system", False)
    assert _sql("SELECT * FROM admin_actions") == []


def test_admin_stats_counts_users_sessions_streams_and_todays_revenue(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    creator, fan = make_user(role="creator"), make_user()
    make_user(role="system")
    _sql(
        """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, state, channel, rate_per_minute,
                                      ring_expires_at, connected_at)
           VALUES (%(f)s, %(c)s, %(f)s, 'video', 'active', 'call_a', 10, now(), now())""",
        {"f": fan.id, "c": creator.id},
    )
    _sql("INSERT INTO streams (creator_id, channel, title) VALUES (%(c)s, 'live_a', 'hi')", {"c": creator.id})
    for intent, cents, status, created in (
        ("pi_1", 500, "succeeded", "now()"),
        ("pi_2", 1900, "succeeded", "now()"),
        ("pi_3", 3900, "requires_payment_method", "now()"),
        ("pi_4", 6900, "succeeded", "now() - interval '2 days'"),
    ):
        _sql(
            f"""INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, status, created_at)
                VALUES (%(u)s, %(pi)s, 50, %(c)s, %(s)s, {created})""",
            {"u": fan.id, "pi": intent, "c": cents, "s": status},
        )
    r = functions.client(STATS).get("/api/admin/stats", headers=boss.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body.pop("payouts")) >= {"byStatus", "recent"}  # the payouts section; tests/payouts check it
    assert body == {
        "totalUsers": 3,
        "activeCreators": 1,
        "activeSessions": 1,
        "liveStreams": 1,
        "pendingApplications": 0,
        "revenue": {"todayCents": 2400},
    }


def test_stats_sections_are_extensible(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    admin.STAT_SECTIONS.append(lambda conn: {"payouts": {"pendingCount": 0}})
    try:
        body = functions.client(STATS).get("/api/admin/stats", headers=boss.headers).json()
    finally:
        admin.STAT_SECTIONS.pop()
    assert body["payouts"] == {"pendingCount": 0} and "revenue" in body

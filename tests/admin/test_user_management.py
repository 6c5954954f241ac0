"""AdminUserManagement.js against GET /admin/users and PUT /admin/users/{supabase_id}/role (mismatch M9).

The page keys every row on `supabase_id`, shows `is_super_admin` (here: role = 'admin') and sends exactly two
bodies: toggleAdmin `{is_super_admin, role: 'admin'|'user'}` and toggleCreator `{is_creator, creator_type}`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.helpers import audit_rows, is_timestamp, sql
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.support import functions

USERS = "admin/users.py"
ROLE = "admin/users/[uid]/role.py"


def _row(boss: Person, username: str) -> dict[str, Any]:
    body = functions.client(USERS).get("/api/v1/admin/users", headers=boss.headers).json()
    (row,) = [u for u in body["users"] if u["username"] == username]
    return row


def _state(user: Person) -> dict[str, Any]:
    (row,) = sql("SELECT role, is_creator, creator_type FROM users WHERE id = %(id)s", {"id": user.id})
    return row


def _toggle_admin(boss: Person, row: dict[str, Any]) -> Any:
    """What toggleAdmin(user) sends."""
    body = {
        "is_super_admin": not row["is_super_admin"],
        "role": "admin" if not row["is_super_admin"] else "user",
    }
    return functions.client(ROLE).put(
        f"/api/v1/admin/users/{row['supabase_id']}/role", headers=boss.headers, json=body
    )


def _toggle_creator(boss: Person, row: dict[str, Any]) -> Any:
    """What toggleCreator(user) sends."""
    body = {"is_creator": not row["is_creator"], "creator_type": "Creator" if not row["is_creator"] else None}
    return functions.client(ROLE).put(
        f"/api/v1/admin/users/{row['supabase_id']}/role", headers=boss.headers, json=body
    )


def test_user_rows_carry_every_field_the_page_reads(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    make_user(username="plain_fan")
    make_user(role="creator", username="a_creator")
    r = functions.client(USERS).get("/api/v1/admin/users", headers=boss.headers)
    assert r.status_code == 200, r.text
    users = r.json()["users"]
    assert len(users) == 3
    for u in users:
        assert isinstance(u["supabase_id"], str) and u["supabase_id"] == u["id"]
        assert isinstance(u["is_super_admin"], bool) and isinstance(u["is_creator"], bool)
        assert isinstance(u["email"], str) and isinstance(u["username"], str)
        assert u["display_name"] is None or isinstance(u["display_name"], str)
        assert is_timestamp(u["created_at"])
    flags = {u["username"]: (u["is_super_admin"], u["is_creator"]) for u in users}
    assert flags == {boss.username: (True, False), "plain_fan": (False, False), "a_creator": (False, True)}


def test_make_admin_then_remove_admin_with_the_pages_bodies(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    fan = make_user(username="rising_fan")
    r = _toggle_admin(boss, _row(boss, "rising_fan"))
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str)
    assert r.json()["user"]["is_super_admin"] is True
    assert _state(fan)["role"] == "admin"
    row = _row(boss, "rising_fan")
    assert row["is_super_admin"] is True

    r = _toggle_admin(boss, row)
    assert r.status_code == 200, r.text
    assert _state(fan)["role"] == "fan" and _row(boss, "rising_fan")["is_super_admin"] is False
    logs = audit_rows("set_role")
    assert [(a["admin_id"], a["target_user_id"]) for a in logs] == [(boss.id, fan.id)] * 2
    assert [a["details"]["to"]["role"] for a in logs] == ["admin", "fan"]
    assert logs[0]["details"]["request"] == {"is_super_admin": True, "role": "admin"}


def test_removing_admin_from_a_creator_leaves_a_creator(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    both = make_user(role="admin", is_creator=True, username="admin_creator")
    assert _toggle_admin(boss, _row(boss, "admin_creator")).status_code == 200
    assert _state(both) == {"role": "creator", "is_creator": True, "creator_type": None}


def test_make_creator_approves_the_pending_application_and_remove_creator_undoes_it(
    make_user: MakeUser,
) -> None:
    boss, fan = make_user(role="admin"), make_user(username="hopeful")
    assert (
        functions.client("users/apply-creator.py")
        .post("/api/users/apply-creator", headers=fan.headers, json={"category": "fitness"})
        .status_code
        == 201
    )
    r = _toggle_creator(boss, _row(boss, "hopeful"))
    assert r.status_code == 200, r.text
    assert r.json()["application"]["status"] == "approved"
    assert _state(fan) == {"role": "creator", "is_creator": True, "creator_type": "Creator"}
    assert sql("SELECT status, reviewed_by FROM creator_applications") == [
        {"status": "approved", "reviewed_by": boss.id}
    ]

    r = _toggle_creator(boss, _row(boss, "hopeful"))
    assert r.status_code == 200, r.text
    assert _state(fan)["role"] == "fan" and _state(fan)["is_creator"] is False
    assert len(audit_rows("set_role")) == 2


def test_make_creator_keeps_a_creators_own_category_and_an_admin_stays_admin(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    sql("UPDATE users SET creator_type = 'fitness' WHERE id = %(id)s", {"id": boss.id})
    r = _toggle_creator(boss, _row(boss, boss.username))
    assert r.status_code == 200, r.text
    assert _state(boss) == {"role": "admin", "is_creator": True, "creator_type": "fitness"}


def test_an_admin_cannot_remove_their_own_admin_role(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    r = _toggle_admin(boss, _row(boss, boss.username))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "CANNOT_DEMOTE_SELF" and isinstance(r.json()["error"], str)
    assert _state(boss)["role"] == "admin"
    assert audit_rows() == []


def test_the_system_account_is_never_changed(make_user: MakeUser) -> None:
    boss, system = make_user(role="admin"), make_user(role="system")
    for body in ({"is_creator": True, "creator_type": "Creator"}, {"is_super_admin": True, "role": "admin"}):
        r = functions.client(ROLE).put(f"/api/admin/users/{system.id}/role", headers=boss.headers, json=body)
        assert r.status_code == 403 and r.json()["code"] == "SYSTEM_ACCOUNT"
    assert _state(system) == {"role": "system", "is_creator": False, "creator_type": None}
    assert audit_rows() == []


@pytest.mark.parametrize(
    "body",
    [
        {"is_super_admin": True, "role": "user"},
        {"is_super_admin": False, "role": "admin"},
        {"is_super_admin": "true", "role": "admin"},
        {"is_creator": 1, "creator_type": "Creator"},
        {"creator_type": "Creator"},
        {"role": "user", "is_creator": True, "creator_type": "x" * 51},
        {"is_creator": True, "token_balance": 5},
    ],
)
def test_malformed_toggles_are_422_and_change_nothing(make_user: MakeUser, body: dict[str, Any]) -> None:
    boss, fan = make_user(role="admin"), make_user()
    r = functions.client(ROLE).put(f"/api/admin/users/{fan.id}/role", headers=boss.headers, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert _state(fan) == {"role": "fan", "is_creator": False, "creator_type": None}
    assert audit_rows() == []

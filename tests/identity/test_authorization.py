"""Authorization sweep: who may call each identity route, and that refusals leave no trace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from lib import db
from localdev.supabase_standin import SupabaseStandin
from tests.conftest import MakeUser
from tests.support import functions

Audience = Literal["public", "user", "creator", "admin"]


@dataclass(frozen=True)
class Route:
    file: str
    method: str
    path: str  # {other} is replaced by another user's id
    audience: Audience
    body: Any = None


ROUTES = [
    Route("auth/sync-user.py", "POST", "/api/auth/sync-user", "user", {}),
    Route("auth/sync-metadata.py", "POST", "/api/auth/sync-metadata", "user"),
    Route("auth/create-profile.py", "POST", "/api/auth/create-profile", "user", {"username": "new_name"}),
    Route("users/profile.py", "GET", "/api/users/profile", "user"),
    Route("users/profile.py", "PUT", "/api/users/profile", "user", {"bio": "x"}),
    Route("users/profile.py", "PATCH", "/api/users/profile", "user", {"bio": "x"}),
    Route("users/profile.py", "POST", "/api/users/profile", "user", {"bio": "x"}),
    Route("users/follow.py", "POST", "/api/users/follow", "user", {"creatorUsername": "someone"}),
    Route("users/favorite.py", "POST", "/api/users/favorite", "user", {"creatorId": str(uuid.UUID(int=7))}),
    Route("users/engagement.py", "GET", "/api/users/engagement", "user"),
    Route("users/search.py", "GET", "/api/users/search?q=someone", "public"),
    Route("public/creators/[id_or_username].py", "GET", "/api/public/creators/someone", "public"),
    Route("users/check-username/[username].py", "GET", "/api/users/check-username/some_name", "public"),
    Route("users/apply-creator.py", "POST", "/api/users/apply-creator", "user", {}),
    Route("users/creators.py", "GET", "/api/users/creators", "public"),
    Route("users/public/creator/[username].py", "GET", "/api/users/public/creator/someone", "public"),
    Route("users/heartbeat.py", "POST", "/api/users/heartbeat", "user"),
    Route("creators/rates.py", "GET", "/api/creators/rates", "creator"),
    Route("creators/rates.py", "POST", "/api/creators/rates", "creator", {"rates": {"videoCall": 99}}),
    Route("creators/[id]/follow.py", "POST", "/api/creators/{other}/follow", "user"),
    Route("creators/[id]/unfollow.py", "DELETE", "/api/creators/{other}/unfollow", "user"),
    Route("creators/stats.py", "GET", "/api/creators/stats", "creator"),
    Route("admin/users.py", "GET", "/api/admin/users", "admin"),
    Route("admin/users/[uid]/role.py", "PUT", "/api/admin/users/{other}/role", "admin", {"role": "admin"}),
    Route("admin/stats.py", "GET", "/api/admin/stats", "admin"),
]
_RANK = {"public": 0, "user": 1, "creator": 2, "admin": 3}


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    tables = ("users", "follows", "favorites", "creator_applications", "admin_actions")
    with db.transaction() as conn:
        return {
            t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()] for t in tables
        }


def _call(route: Route, other: uuid.UUID, headers: dict[str, str] | None = None) -> Any:
    client = functions.client(route.file)
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if route.body is not None:
        kwargs["json"] = route.body
    return client.request(route.method, route.path.format(other=other), **kwargs)


def test_every_identity_function_is_in_the_sweep() -> None:
    # The admin routes beyond the three here are swept by tests/identity/test_admin.py.
    mine = {
        f
        for f in functions.all_function_files()
        if f.split("/")[0] in ("auth", "users", "creators", "public")
    }
    assert mine == {r.file for r in ROUTES if not r.file.startswith("admin/")}
    assert {r.file for r in ROUTES} <= set(functions.all_function_files())


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.audience != "public"], ids=lambda r: f"{r.method} {r.path}"
)
def test_no_token_is_401_with_no_side_effect(make_user: MakeUser, route: Route) -> None:
    other = make_user(role="creator")
    before = _snapshot()
    r = _call(route, other.id)
    assert r.status_code == 401, r.text
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("route", "caller"),
    [
        (r, who)
        for r in ROUTES
        for who in ("fan", "creator")
        if _RANK[r.audience] > _RANK[who if who != "fan" else "user"]
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.method} {v.path}",
)
def test_privileged_routes_refuse_lesser_roles_with_403_and_no_side_effect(
    make_user: MakeUser, route: Route, caller: str
) -> None:
    me = make_user(role=caller)
    other = make_user()
    before = _snapshot()
    r = _call(route, other.id, me.headers)
    assert r.status_code == 403, r.text
    assert r.json()["code"] in ("CREATOR_ONLY", "ADMIN_ONLY")
    assert _snapshot() == before


def test_another_users_profile_never_leaks_private_fields(make_user: MakeUser) -> None:
    me, other = make_user(), make_user(balance=77)
    body = (
        functions.client("users/profile.py")
        .get(f"/api/users/profile?uid={other.id}", headers=me.headers)
        .json()
    )
    assert "token_balance" not in body and "email" not in body
    assert body["id"] == str(other.id)


def test_unfollow_only_removes_my_own_follow(make_user: MakeUser) -> None:
    creator, mine, theirs = make_user(role="creator"), make_user(), make_user()
    follow = functions.client("creators/[id]/follow.py")
    assert follow.post(f"/api/creators/{creator.id}/follow", headers=theirs.headers).status_code == 200
    r = functions.client("creators/[id]/unfollow.py").delete(
        f"/api/creators/{creator.id}/unfollow", headers=mine.headers
    )
    assert r.status_code == 200 and r.json()["followersCount"] == 1
    assert [row["follower_id"] for row in _snapshot()["follows"]] == [theirs.id]


def test_bodies_naming_another_user_act_only_on_the_caller(make_user: MakeUser) -> None:
    me, other = make_user(), make_user()
    before_other = [u for u in _snapshot()["users"] if u["id"] == other.id]
    for route, body in (
        ("users/apply-creator.py", {"user_id": str(other.id), "userId": str(other.id), "bio": "me"}),
        (
            "auth/sync-user.py",
            {"id": str(other.id), "metadata": {"id": str(other.id), "username": "stolen_name"}},
        ),
    ):
        path = "/api/" + route.removesuffix(".py")
        assert functions.client(route).post(path, headers=me.headers, json=body).status_code in (200, 201)
    snap = _snapshot()
    assert [a["user_id"] for a in snap["creator_applications"]] == [me.id]
    assert [u for u in snap["users"] if u["id"] == other.id] == before_other


def test_sync_metadata_only_ever_writes_the_callers_own_supabase_user(
    make_user: MakeUser, supabase: SupabaseStandin
) -> None:
    me, other = make_user(role="creator"), make_user(role="admin")
    r = functions.client("auth/sync-metadata.py").post(
        "/api/auth/sync-metadata",
        headers=me.headers,
        json={"userId": str(other.id), "id": str(other.id), "role": "admin", "isAdmin": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["isAdmin"] is False
    assert [c["path"] for c in supabase.requests("/auth/v1/admin/users/")] == [
        f"/auth/v1/admin/users/{me.id}"
    ]

"""EnhancedAdminDashboard.js's creator applications: the list query it builds, approve/reject/queue bodies."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from tests.admin.helpers import audit_rows, is_timestamp, sql
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.support import functions

LIST = "admin/creator-applications.py"
ACTION = "admin/creator-applications/[application_id]/{}.py"
APPLY_BODY = {
    "bio": "I teach yoga.",
    "category": "Fitness",
    "experience": "10 years",
    "socialMedia": {"instagram": "@yogi"},
}


def _query(**overrides: Any) -> str:
    """The URLSearchParams fetchApplications builds with the page's default filters."""
    params = {
        "status": "",
        "page": 1,
        "limit": 50,
        "search": "",
        "location": "all",
        "specialty": "all",
        "dateRange": "week",
    }
    params.update(overrides)
    return "/api/v1/admin/creator-applications?" + urlencode(params)


def _apply(user: Person) -> str:
    r = functions.client("users/apply-creator.py").post(
        "/api/users/apply-creator", headers=user.headers, json=APPLY_BODY
    )
    assert r.status_code == 201, r.text
    return str(r.json()["application"]["id"])


def _act(boss: Person, action: str, app_id: str, body: dict[str, Any]) -> Any:
    return functions.client(ACTION.format(action)).post(
        f"/api/v1/admin/creator-applications/{app_id}/{action}", headers=boss.headers, json=body
    )


def _listed(boss: Person, **overrides: Any) -> dict[str, Any]:
    r = functions.client(LIST).get(_query(**overrides), headers=boss.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _user(user: Person) -> dict[str, Any]:
    (row,) = sql("SELECT role, is_creator, creator_type FROM users WHERE id = %(id)s", {"id": user.id})
    return row


def test_the_list_has_every_field_the_cards_read(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user(username="yogi")
    sql(
        """INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, status)
           VALUES (%(u)s, 'pi_a', 200, 1900, 'succeeded'), (%(u)s, 'pi_b', 50, 500, 'canceled')""",
        {"u": fan.id},
    )
    app_id = _apply(fan)
    body = _listed(boss)
    assert body["total"] == 1 and isinstance(body["applications"], list)
    (app,) = body["applications"]
    assert app["id"] == app_id and app["username"] == "yogi" and app["email"] == fan.email
    assert app["status"] == "pending" and is_timestamp(app["submittedAt"]) and app["reviewedAt"] is None
    assert app["profilePic"] is None and app["location"] is None
    assert app["bio"] == "I teach yoga." and app["experience"] == "10 years"
    assert app["specialties"] == ["Fitness"] and app["socialMedia"] == {"instagram": "@yogi"}
    stats = app["userStats"]
    assert stats["totalSpent"] == 19.0 and stats["totalSpentCents"] == 1900
    assert is_timestamp(stats["memberSince"]) and stats["sessionCount"] == 0 and stats["avgRating"] is None
    assert body["counts"] == {"pending": 1, "queued": 0, "approved": 0, "rejected": 0}


def test_the_list_filters_by_status_date_range_specialty_and_search(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    recent, old = make_user(username="recent_one"), make_user(username="old_one")
    _apply(recent)
    old_id = _apply(old)
    sql(
        "UPDATE creator_applications SET submitted_at = now() - interval '10 days' WHERE id = %(id)s",
        {"id": old_id},
    )

    def names(**overrides: Any) -> list[str]:
        return [a["username"] for a in _listed(boss, **overrides)["applications"]]

    assert names() == ["recent_one"], "the page's default dateRange=week"
    assert names(dateRange="all") == ["recent_one", "old_one"]
    assert names(dateRange="all", status="pending") == ["recent_one", "old_one"]
    assert names(dateRange="all", status="approved") == []
    assert names(dateRange="all", specialty="fitness") == ["recent_one", "old_one"]
    assert names(dateRange="all", specialty="education") == []
    assert names(dateRange="all", search="OLD_") == ["old_one"]
    page2 = _listed(boss, dateRange="all", limit=1, page=2)
    assert [a["username"] for a in page2["applications"]] == ["old_one"] and page2["total"] == 2
    r = functions.client(LIST).get(_query(status="archived"), headers=boss.headers)
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"


def test_approve_makes_the_applicant_a_creator_once_and_audits_it(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user()
    app_id = _apply(fan)
    r = _act(boss, "approve", app_id, {"reviewNotes": ""})
    assert r.status_code == 200, r.text
    assert r.json()["application"]["status"] == "approved" and is_timestamp(
        r.json()["application"]["reviewedAt"]
    )
    assert _user(fan) == {"role": "creator", "is_creator": True, "creator_type": "Fitness"}
    (audit,) = audit_rows()
    assert (audit["admin_id"], audit["action"], audit["target_user_id"]) == (
        boss.id,
        "approve_application",
        fan.id,
    )
    assert audit["details"]["applicationId"] == app_id

    again = _act(boss, "approve", app_id, {"reviewNotes": ""})  # fetchWithRetry, or Bulk Approve twice
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert len(audit_rows()) == 1, "a replay changes nothing and audits nothing"
    r = _act(boss, "reject", app_id, {"reason": "too late"})
    assert r.status_code == 409 and r.json()["code"] == "APPLICATION_DECIDED"
    assert _listed(boss, status="approved")["applications"][0]["id"] == app_id


def test_an_admin_applicant_stays_an_admin_when_approved(make_user: MakeUser) -> None:
    boss, other_admin = make_user(role="admin"), make_user(role="admin")
    app_id = _apply(other_admin)
    assert _act(boss, "approve", app_id, {"reviewNotes": "welcome"}).status_code == 200
    assert _user(other_admin)["role"] == "admin" and _user(other_admin)["is_creator"] is True
    assert sql("SELECT review_notes FROM creator_applications") == [{"review_notes": "welcome"}]


def test_queue_keeps_it_open_then_reject_records_the_reason(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user()
    app_id = _apply(fan)
    r = _act(boss, "queue", app_id, {"notes": ""})
    assert r.status_code == 200 and r.json()["application"]["status"] == "queued"
    assert [a["id"] for a in _listed(boss, status="queued")["applications"]] == [app_id]
    assert _listed(boss, status="pending")["applications"] == []
    again = functions.client("users/apply-creator.py").post(
        "/api/users/apply-creator", headers=fan.headers, json={}
    )
    assert again.status_code == 409, "a queued application is still the user's open one"

    r = _act(boss, "reject", app_id, {"reason": "incomplete profile"})
    assert r.status_code == 200 and r.json()["application"]["rejectionReason"] == "incomplete profile"
    assert _user(fan) == {"role": "fan", "is_creator": False, "creator_type": None}
    assert [a["action"] for a in audit_rows()] == ["queue_application", "reject_application"]
    assert _act(boss, "queue", app_id, {"notes": ""}).status_code == 409


def test_unknown_application_is_404_and_bad_bodies_are_422(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user()
    r = _act(boss, "approve", str(uuid.uuid4()), {"reviewNotes": ""})
    assert r.status_code == 404 and r.json()["code"] == "APPLICATION_NOT_FOUND"
    app_id = _apply(fan)
    for action, body in (
        ("approve", {"reviewNotes": 5}),
        ("reject", {"reason": "x" * 2001}),
        ("queue", {"notes": None, "extra": 1}),
    ):
        assert _act(boss, action, app_id, body).status_code == 422, (action, body)
    assert _user(fan)["is_creator"] is False and audit_rows() == []

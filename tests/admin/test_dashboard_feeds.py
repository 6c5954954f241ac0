"""EnhancedAdminDashboard.js's audit log, activity feed and analytics, and admin-only access to every admin route."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from lib import db, ledger
from tests.admin.helpers import audit_rows, is_timestamp, sql
from tests.conftest import MakeUser
from tests.support import functions

APP_ID = "0b7e6a3e-58c4-4c1e-9a51-7f6d1c2b9e10"
ADMIN_ROUTES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("admin/users.py", "GET", "/api/v1/admin/users", None),
    ("admin/users/[uid]/role.py", "PUT", f"/api/v1/admin/users/{APP_ID}/role", {"is_creator": True, "creator_type": "Creator"}),
    ("admin/stats.py", "GET", "/api/v1/admin/stats", None),
    ("admin/creator-applications.py", "GET", "/api/v1/admin/creator-applications?status=&page=1", None),
    ("admin/creator-applications/[application_id]/approve.py", "POST",
     f"/api/v1/admin/creator-applications/{APP_ID}/approve", {"reviewNotes": ""}),
    ("admin/creator-applications/[application_id]/reject.py", "POST",
     f"/api/v1/admin/creator-applications/{APP_ID}/reject", {"reason": ""}),
    ("admin/creator-applications/[application_id]/queue.py", "POST",
     f"/api/v1/admin/creator-applications/{APP_ID}/queue", {"notes": ""}),
    ("admin/audit-logs.py", "GET", "/api/v1/admin/audit-logs", None),
    ("admin/audit-log.py", "POST", "/api/v1/admin/audit-log", {"action": "x", "details": {}}),
    ("admin/activity-feed.py", "GET", "/api/v1/admin/activity-feed", None),
    ("admin/analytics/dashboard.py", "GET", "/api/v1/admin/analytics/dashboard", None),
    ("admin/export/[export_format].py", "POST", "/api/v1/admin/export/csv", {"type": "overview"}),
]  # fmt: skip


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: r[2].split("?")[0])
def test_every_admin_route_is_403_for_a_creator_and_401_without_a_token(
    make_user: MakeUser, route: tuple[str, str, str, dict[str, Any] | None]
) -> None:
    fn, method, path, body = route
    creator = make_user(role="creator")
    client = functions.client(fn)
    r = client.request(method, path, headers=creator.headers, json=body)
    assert r.status_code == 403, r.text
    assert (
        r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == "ADMIN_ONLY"
    )
    assert client.request(method, path, json=body).status_code == 401
    assert audit_rows() == []


def test_the_pages_audit_note_is_kept_as_a_client_note_and_listed(make_user: MakeUser) -> None:
    boss, fan = make_user(role="admin"), make_user()
    functions.client("admin/users/[uid]/role.py").put(
        f"/api/admin/users/{fan.id}/role",
        headers=boss.headers,
        json={"is_creator": True, "creator_type": "Creator"},
    )
    note = {
        "action": "approve_application",
        "details": {"applicationId": APP_ID},
        "timestamp": "2025-05-01T12:00:00.000Z",
    }
    r = functions.client("admin/audit-log.py").post(
        "/api/v1/admin/audit-log", headers=boss.headers, json=note
    )
    assert r.status_code == 201, r.text
    assert r.json()["log"]["action"] == "client_note"

    logs = (
        functions.client("admin/audit-logs.py")
        .get("/api/v1/admin/audit-logs", headers=boss.headers)
        .json()["logs"]
    )
    assert [log["action"] for log in logs] == ["client_note", "set_role"]
    for log in logs:
        assert (
            log["user"] == boss.username
            and is_timestamp(log["timestamp"])
            and isinstance(log["details"], dict)
        )
    assert logs[0]["details"] == {
        "clientAction": "approve_application",
        "details": {"applicationId": APP_ID},
        "clientTimestamp": "2025-05-01T12:00:00+00:00",
    }
    assert logs[1]["target"] == fan.username


@pytest.mark.parametrize(
    "body",
    [
        {"action": "x", "details": {"blob": "y" * 5000}},
        {"action": "", "details": {}},
        {"action": "a" * 65},
        {"action": "x", "details": "not an object"},
        {"details": {}},
    ],
)
def test_oversized_or_malformed_notes_are_422_and_not_stored(
    make_user: MakeUser, body: dict[str, Any]
) -> None:
    boss = make_user(role="admin")
    r = functions.client("admin/audit-log.py").post("/api/admin/audit-log", headers=boss.headers, json=body)
    assert r.status_code == 422, r.text
    assert audit_rows() == []


def _tip(fan_id: uuid.UUID, creator_id: uuid.UUID, amount: int) -> None:
    """A tip as lib/tips leaves it: a ledger transfer and its tips row."""
    with db.transaction() as conn:
        t = ledger.transfer(
            conn, from_user=fan_id, to_user=creator_id, amount=amount, kind="tip",
            reference_type="tip", reference_id=str(uuid.uuid4()), idempotency_key=f"test:{uuid.uuid4()}",
        )  # fmt: skip
        assert t is not None
        conn.execute(
            """INSERT INTO tips (id, from_user_id, to_user_id, amount, creator_cut, platform_fee, ledger_entry_id)
               VALUES (%(id)s, %(f)s, %(c)s, %(a)s, %(cut)s, %(fee)s, %(e)s)""",
            {"id": uuid.uuid4(), "f": fan_id, "c": creator_id, "a": amount, "cut": t.creator_cut,
             "fee": t.platform_fee, "e": t.id},
        )  # fmt: skip


def test_activity_feed_merges_signups_purchases_tips_and_applications_without_emails(
    make_user: MakeUser,
) -> None:
    boss = make_user(role="admin")
    creator, fan = make_user(role="creator", username="star"), make_user(username="patron", balance=100)
    sql(
        """INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, status)
           VALUES (%(u)s, 'pi_feed', 200, 1900, 'succeeded')""",
        {"u": fan.id},
    )
    _tip(fan.id, creator.id, 25)
    functions.client("users/apply-creator.py").post("/api/users/apply-creator", headers=fan.headers, json={})
    r = functions.client("admin/activity-feed.py").get("/api/v1/admin/activity-feed", headers=boss.headers)
    assert r.status_code == 200, r.text
    activities = r.json()["activities"]
    assert {a["type"] for a in activities} == {"signup", "purchase", "tip", "creator_application"}
    for a in activities:
        assert isinstance(a["message"], str) and is_timestamp(a["timestamp"])
    messages = {a["message"] for a in activities}
    assert {"@patron bought 200 tokens ($19.00)", "@patron tipped @star 25 tokens"} <= messages
    assert "@patron applied to become a creator" in messages
    assert [a["timestamp"] for a in activities] == sorted((a["timestamp"] for a in activities), reverse=True)
    assert "@example.test" not in json.dumps(r.json()), "no emails in the feed"


def test_analytics_dashboard_series_come_from_payments_users_and_the_ledger(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    creator, fan = make_user(role="creator", username="earner"), make_user(balance=100)
    for intent, cents, status, created in (
        ("pi_t1", 500, "succeeded", "now()"),
        ("pi_t2", 1900, "succeeded", "now()"),
        ("pi_t3", 3900, "canceled", "now()"),
        ("pi_old", 6900, "succeeded", "now() - interval '2 days'"),
    ):
        sql(
            f"""INSERT INTO payments (user_id, stripe_payment_intent_id, tokens, amount_cents, status, created_at)
                VALUES (%(u)s, %(pi)s, 50, %(c)s, %(s)s, {created})""",
            {"u": fan.id, "pi": intent, "c": cents, "s": status},
        )
    _tip(fan.id, creator.id, 40)
    r = functions.client("admin/analytics/dashboard.py").get(
        "/api/v1/admin/analytics/dashboard", headers=boss.headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"revenue", "growth", "performance", "conversions"}
    revenue, growth = body["revenue"], body["growth"]
    assert len(revenue) == 30 and len(growth) == 30
    for point in revenue:
        assert isinstance(point["date"], str) and isinstance(point["amount"], int | float)
    assert revenue[-1]["amountCents"] == 2400 and revenue[-1]["amount"] == 24.0
    assert revenue[-3]["amountCents"] == 6900 and sum(p["amountCents"] for p in revenue) == 9300
    assert growth[-1]["users"] == 3 and all(isinstance(p["users"], int) for p in growth)
    assert body["performance"] == [
        {"creator": "earner", "creatorId": str(creator.id), "earnings": 40, "sessions": 0, "rating": None}
    ]
    funnel = {c["stage"]: c["value"] for c in body["conversions"]}
    assert funnel == {"signed_up": 3, "purchased": 1, "applied": 0, "approved": 0}
    assert (
        functions.client("admin/analytics/dashboard.py")
        .get("/api/admin/analytics/dashboard?days=0", headers=boss.headers)
        .status_code
        == 422
    )

"""Every /sessions/* row of FRONTEND-CONTRACT.md (#36-#44, #151, #152): the exact body the page sends is accepted,
and every field the page reads is there with the type it uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from lib import db
from tests.calls.helpers import balance, real_now
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.sessions.helpers import get, local_slot, next_minute, post

# CallRequestsModal.js:330-430 and CallRequestsPage.js:155-178 read these off each request.
REQUEST_FIELDS: dict[str, Any] = {
    "id": str,
    "fan_id": str,
    "fan_username": str,
    "fan_profile_pic": (str, type(None)),
    "type": str,
    "request_type": str,
    "duration_minutes": (int, type(None)),
    "estimated_duration": (int, type(None)),
    "price_per_minute": int,
    "rate_per_min": int,
    "scheduled_date": (str, type(None)),
    "scheduled_time": (str, type(None)),
    "message": (str, type(None)),
    "status": str,
    "created_at": str,
    "expires_at": (str, type(None)),
    "accepted_at": (str, type(None)),
    "offering_tokens": int,
    "urgency": str,
}


def check_request(item: dict[str, Any]) -> None:
    for name, kind in REQUEST_FIELDS.items():
        assert name in item, name
        assert isinstance(item[name], kind) and not isinstance(item[name], bool), (name, item[name])
    UUID(item["id"]), UUID(item["fan_id"])
    datetime.fromisoformat(item["created_at"])
    assert item["type"] in ("video", "voice")


def confirmation_body(creator: Person, price: int = 10, service: str = "video") -> dict[str, Any]:
    """CallConfirmationModal.js:138-143, exactly."""
    return {
        "creatorId": str(creator.id),
        "creatorUsername": creator.username,
        "serviceType": service,
        "price": price,
    }


def request_modal_body(creator: Person, at: datetime) -> dict[str, Any]:
    """CallRequestModal.js:82-95, exactly (fan_id is the creator's id: the modal is on the creator's card)."""
    day, hhmm = local_slot(at)
    return {
        "fan_id": str(creator.id),
        "creator_username": creator.username,
        "type": "video",
        "duration_minutes": 30,
        "rate_per_min": 10,
        "scheduled_date": day,
        "scheduled_time": hhmm,
        "message": "Video call request",
        "scheduled": True,
    }


def test_row_39_request_rings_now_and_answers_session_and_request_ids(fan: Person, creator: Person) -> None:
    r = post("request", fan, "/api/v1/sessions/request", confirmation_body(creator))
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["sessionId"], str) and isinstance(body["requestId"], str)
    assert body["sessionId"] == body["requestId"] == body["callId"] and body["state"] == "ringing"
    assert body["status"] == "pending" and body["scheduled"] is False


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"serviceType": "message"}, 422, "VALIDATION_ERROR"),
        ({"price": "10"}, 422, "VALIDATION_ERROR"),
        ({"creatorId": "not-a-uuid"}, 422, "VALIDATION_ERROR"),
        ({"price": 5}, 409, "PRICE_CHANGED"),  # shown 5 a minute, the creator charges 10
    ],
)
def test_row_39_bad_requests_are_clear_problems_with_a_message(
    fan: Person, creator: Person, change: dict[str, Any], status: int, code: str
) -> None:
    r = post("request", fan, "/api/v1/sessions/request", {**confirmation_body(creator), **change})
    assert r.status_code == status and r.json()["code"] == code
    assert isinstance(r.json()["message"], str) and r.json()["message"]  # the modal toasts error.message


def test_row_39_a_fan_without_a_minute_of_tokens_gets_402(make_user: MakeUser, creator: Person) -> None:
    broke = make_user(balance=5)
    r = post("request", broke, "/api/v1/sessions/request", confirmation_body(creator))
    assert r.status_code == 402 and r.json()["code"] == "INSUFFICIENT_TOKENS" and r.json()["message"]


def test_row_39_a_retried_request_answers_the_same_ringing_call(fan: Person, creator: Person) -> None:
    first = post("request", fan, "/api/v1/sessions/request", confirmation_body(creator))
    again = post("request", fan, "/api/v1/sessions/request", confirmation_body(creator))
    assert again.status_code == 200 and again.json()["sessionId"] == first.json()["sessionId"]


def test_row_44_the_creator_lists_pending_requests_with_every_field_the_pages_read(
    fan: Person, creator: Person
) -> None:
    instant = post("request", fan, "/api/v1/sessions/request", confirmation_body(creator)).json()
    body = request_modal_body(creator, next_minute(real_now(), 90))
    booked = post("create-invite", fan, "/api/v1/sessions/create-invite", body).json()
    r = get("requests", creator, "/api/v1/sessions/requests?status=pending")
    assert r.status_code == 200
    items = {i["id"]: i for i in r.json()["requests"]}
    assert set(items) == {instant["requestId"], booked["invite"]["id"]}
    for item in items.values():
        check_request(item)
        assert item["fan_id"] == str(fan.id) and item["fan_username"] == fan.username
        assert item["status"] == "pending" and item["direction"] == "incoming" and item["can_respond"] is True
    assert items[instant["requestId"]]["scheduled_date"] is None  # "Immediate"
    scheduled = items[booked["invite"]["id"]]
    assert (scheduled["scheduled_date"], scheduled["scheduled_time"]) == (
        body["scheduled_date"],
        body["scheduled_time"],
    )
    assert scheduled["request_type"] == "session_invite" and scheduled["duration_minutes"] == 30
    assert scheduled["offering_tokens"] == 300 and scheduled["price_per_minute"] == 10
    # SchedulePage.js:73 counts them; the other tabs and a bad status.
    assert get("requests", creator, "/api/v1/sessions/requests?status=accepted").json()["requests"] == []
    assert len(get("requests", creator, "/api/v1/sessions/requests?status=all").json()["requests"]) == 2
    assert len(get("requests", fan, "/api/v1/sessions/requests?status=pending").json()["requests"]) == 2
    assert get("requests", creator, "/api/v1/sessions/requests?status=bogus").status_code == 422


def test_row_40_accept_with_the_modals_body_and_with_none(make_user: MakeUser, creator: Person) -> None:
    fan_a, fan_b = make_user(balance=100), make_user(balance=100)
    other = make_user(role="creator")
    instant = post("request", fan_a, "/api/v1/sessions/request", confirmation_body(creator)).json()
    # CallRequestsModal.js:73-76 echoes the request's (null) date and time.
    r = post(
        "requests/accept",
        creator,
        f"/api/v1/sessions/requests/{instant['requestId']}/accept",
        {"scheduled_date": None, "scheduled_time": None},
    )
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["session"], dict) and r.json()["session"]["status"] == "accepted"
    assert r.json()["call"]["token"] and balance(fan_a) == 90  # minute 1, as /calls/{id}/accept
    again = post("requests/accept", creator, f"/api/v1/sessions/requests/{instant['requestId']}/accept")
    assert again.status_code == 200 and balance(fan_a) == 90  # a retried accept charges nothing
    # CallRequestsPage.js:265 sends no body.
    booked = post(
        "create-invite",
        fan_b,
        "/api/v1/sessions/create-invite",
        request_modal_body(other, next_minute(real_now(), 90)),
    ).json()
    r = post("requests/accept", other, f"/api/v1/sessions/requests/{booked['invite']['id']}/accept")
    assert r.status_code == 200 and r.json()["session"]["status"] == "accepted"
    assert isinstance(r.json()["session"]["accepted_at"], str)


def test_rows_41_42_decline_and_cancel_with_the_modals_bodies(make_user: MakeUser, creator: Person) -> None:
    fan_a, fan_b = make_user(balance=100), make_user(balance=100)
    first = post("request", fan_a, "/api/v1/sessions/request", confirmation_body(creator)).json()
    r = post(
        "requests/decline",
        creator,
        f"/api/v1/sessions/requests/{first['requestId']}/decline",
        {"reason": "Not available at this time"},
    )
    assert r.status_code == 200 and r.json()["session"]["status"] == "declined"
    booked = post(
        "create-invite",
        fan_b,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 90)),
    ).json()["invite"]
    post("requests/accept", creator, f"/api/v1/sessions/requests/{booked['id']}/accept")
    r = post(
        "requests/cancel",
        creator,
        f"/api/v1/sessions/requests/{booked['id']}/cancel",
        {"reason": "Creator unavailable for scheduled time"},
    )
    assert r.status_code == 200 and r.json()["request"]["status"] == "cancelled"
    assert r.json()["request"]["reason"] == "Creator unavailable for scheduled time"
    assert (
        get("requests", creator, "/api/v1/sessions/requests?status=declined").json()["requests"][0]["id"]
        == (first["requestId"])
    )


def test_row_43_reschedule_with_the_pages_body(fan: Person, creator: Person) -> None:
    booked = post(
        "create-invite",
        fan,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 90)),
    ).json()["invite"]
    new_day, new_time = local_slot(next_minute(real_now(), 180))
    r = post(
        "requests/reschedule",
        creator,
        f"/api/v1/sessions/requests/{booked['id']}/reschedule",
        {"new_date": new_day, "new_time": new_time, "message": "Creator suggested a new time"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["request"]["scheduled_date"], r.json()["request"]["scheduled_time"]) == (
        new_day,
        new_time,
    )
    assert r.json()["request"]["message"] == "Creator suggested a new time"
    bad = post(
        "requests/reschedule",
        creator,
        f"/api/v1/sessions/requests/{booked['id']}/reschedule",
        {"new_date": "2020-01-01", "new_time": "10:00", "message": "x"},
    )
    assert bad.status_code == 422 and bad.json()["code"] == "SCHEDULED_IN_PAST"


def test_row_36_create_invite_answers_the_invite_id(fan: Person, creator: Person) -> None:
    r = post(
        "create-invite",
        fan,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 90)),
    )
    assert r.status_code == 200, r.text
    UUID(r.json()["invite"]["id"])
    assert r.json()["invite"]["status"] == "pending" and r.json()["invite"]["creator_id"] == str(creator.id)
    # A creator inviting a fan, the other way round.
    back = post(
        "create-invite",
        creator,
        "/api/v1/sessions/create-invite",
        {**request_modal_body(creator, next_minute(real_now(), 120)), "fan_id": str(fan.id)},
    )
    assert back.status_code == 200 and back.json()["invite"]["fan_id"] == str(fan.id)


def test_rows_37_38_invites_accept_and_decline_as_the_page_sends_them(
    make_user: MakeUser, creator: Person
) -> None:
    fan_a, fan_b = make_user(balance=100), make_user(balance=100)
    ids = [
        post(
            "create-invite",
            who,
            "/api/v1/sessions/create-invite",
            request_modal_body(creator, next_minute(real_now(), m)),
        ).json()["invite"]["id"]
        for who, m in ((fan_a, 90), (fan_b, 150))
    ]
    r = post("invites/accept", creator, f"/api/v1/sessions/invites/{ids[0]}/accept")
    assert r.status_code == 200 and r.json()["session"]["status"] == "accepted"
    r = post(
        "invites/decline", creator, f"/api/v1/sessions/invites/{ids[1]}/decline", {"reason": "Not available"}
    )
    assert r.status_code == 200 and r.json()["session"]["status"] == "declined"


def test_rows_151_152_scheduled_and_upcoming_have_what_the_calendar_and_dashboard_read(
    make_user: MakeUser, creator: Person
) -> None:
    fan_a, fan_b = make_user(balance=100), make_user(balance=100)
    accepted = post(
        "create-invite",
        fan_a,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 90)),
    ).json()["invite"]
    post("requests/accept", creator, f"/api/v1/sessions/requests/{accepted['id']}/accept")
    post(
        "create-invite",
        fan_b,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 60)),
    )

    cal = get("scheduled", creator, "/api/v1/sessions/scheduled")
    assert cal.status_code == 200
    sessions = cal.json()["sessions"]
    assert len(sessions) == 2  # the pending one shows too, as pending
    for s in sessions:  # EnhancedScheduleCalendar.js:118-129
        assert (
            isinstance(s["id"], str)
            and s["type"] in ("video-call", "voice-call")
            and isinstance(s["title"], str)
        )
        assert isinstance(s["fan_name"], str) and isinstance(s["creator_name"], str)
        datetime.fromisoformat(s["scheduled_time"])  # new Date(session.scheduled_time)
        assert (
            isinstance(s["duration"], int) and isinstance(s["status"], str) and isinstance(s["tokens"], int)
        )
        assert isinstance(s["participants"], list)
    assert [s["status"] for s in sessions] == ["pending", "accepted"]  # soonest first

    up = get("upcoming", creator, "/api/v1/sessions/upcoming")
    assert up.status_code == 200
    (s,) = up.json()["sessions"]  # accepted only
    assert s["id"] == accepted["id"] and s["type"] == "video"  # HybridCreatorDashboard.js:1044-1290
    for name in ("date", "time", "scheduled_time"):
        datetime.fromisoformat(s[name])
    assert s["scheduled_date"] == accepted["scheduled_date"] and s["fan_username"] == fan_a.username
    assert s["username"] == fan_a.username and s["duration"] == 30 and s["duration_minutes"] == 30
    assert (
        get("upcoming", fan_a, "/api/v1/sessions/upcoming").json()["sessions"][0]["username"]
        == creator.username
    )


def test_outsiders_and_strangers_get_404_everywhere(fan: Person, creator: Person, outsider: Person) -> None:
    booked = post(
        "create-invite",
        fan,
        "/api/v1/sessions/create-invite",
        request_modal_body(creator, next_minute(real_now(), 90)),
    ).json()["invite"]["id"]
    call = post("request", outsider, "/api/v1/sessions/request", confirmation_body(creator)).json()[
        "requestId"
    ]
    stranger = post(
        "request", fan, "/api/v1/sessions/request", confirmation_body(creator)
    ).json()  # creator busy
    assert stranger["code"] == "CREATOR_BUSY"
    for rid in (booked, call):
        for route, suffix in (
            ("requests/accept", "accept"),
            ("requests/decline", "decline"),
            ("requests/cancel", "cancel"),
        ):
            who = outsider if rid == booked else fan
            r = post(route, who, f"/api/v1/sessions/requests/{rid}/{suffix}", {})
            assert r.status_code == 404, (route, r.text)
    # The requester cannot accept their own booking; the person asked can.
    r = post("requests/accept", fan, f"/api/v1/sessions/requests/{booked}/accept")
    assert r.status_code == 403 and r.json()["code"] == "NOT_CALLEE"


def test_the_platform_account_can_be_neither_requested_nor_invited(fan: Person, creator: Person) -> None:
    from lib import ledger

    with db.transaction() as conn:
        ledger.ensure_platform_account(conn)
    system = Person(ledger.PLATFORM_USER_ID, "digis_platform", "", "")
    r = post("request", fan, "/api/v1/sessions/request", confirmation_body(system))
    assert r.status_code == 404 and r.json()["code"] == "CREATOR_NOT_FOUND"
    body = request_modal_body(system, next_minute(real_now(), 90))
    r = post("create-invite", creator, "/api/v1/sessions/create-invite", {**body, "creator_username": None})
    assert r.status_code == 404 and r.json()["code"] == "USER_NOT_FOUND"

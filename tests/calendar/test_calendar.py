"""The calendar: events from bookings, classes and streams, the page's fields, and deleting = cancelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lib import realtime
from tests import conftest
from tests.calls.helpers import outbox
from tests.classes.helpers import join, schedule, start
from tests.conftest import MakeUser
from tests.sessions.helpers import local_slot, next_minute
from tests.sessions.helpers import post as sessions_post
from tests.streams.helpers import go_live
from tests.support import functions

EVENTS = "schedule/calendar-events/[ref].py"
SCHEDULE = "schedule/[user_id].py"
# SchedulePage.js:129-140 reads these of each calendar event.
EVENT_FIELDS = {
    "id": str,
    "event_type": str,
    "title": str,
    "scheduled_date": str,
    "scheduled_time": str,
    "duration_minutes": int,
    "status": str,
    "creator_id": str,
}
STATS = ("totalEvents", "upcomingCalls", "completedCalls", "revenue")


def get(file: str, path: str, who: conftest.TestUser) -> httpx.Response:
    return functions.client(file).get("/api/v1" + path, headers=who.headers)


def delete(event_id: str, who: conftest.TestUser) -> httpx.Response:
    return functions.client(EVENTS).delete(
        f"/api/v1/schedule/calendar-events/{event_id}", headers=who.headers
    )


def book(fan: conftest.TestUser, creator: conftest.TestUser, days: int = 2) -> str:
    """The fan books a video call (CallConfirmationModal's body with a date and time); the booking id."""
    day, hhmm = local_slot(next_minute(datetime.now(UTC), days * 24 * 60))
    body = {
        "creatorId": str(creator.id),
        "serviceType": "video",
        "price": 10,
        "scheduled_date": day,
        "scheduled_time": hhmm,
    }
    r = sessions_post("request", fan, "/api/sessions/request", body)
    assert r.status_code == 200, r.text
    return str(r.json()["requestId"])


def _check(event: dict[str, Any]) -> None:
    for name, kind in EVENT_FIELDS.items():
        assert isinstance(event[name], kind), (name, event)
    assert "fan_id" in event
    assert len(event["scheduled_date"]) == 10 and len(event["scheduled_time"]) == 5


def test_my_calendar_shows_my_calls_classes_and_streams(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    booking = book(fan, creator)
    cls = schedule(creator, start=datetime.now(UTC) + timedelta(days=1))
    join(fan, cls["id"])
    go_live(creator, "Open stream")
    mine = get(EVENTS, f"/schedule/calendar-events/{fan.id}", fan)
    assert mine.status_code == 200, mine.text
    events = mine.json()["events"]
    assert [(e["id"], e["event_type"]) for e in events] == [
        (f"class-{cls['id']}", "class"),
        (booking, "video"),
    ]
    for e in events:
        _check(e)
    assert events[1]["status"] == "pending" and events[1]["fan_id"] == str(fan.id)
    theirs = get(EVENTS, f"/schedule/calendar-events/{creator.id}", creator).json()
    assert sorted(e["event_type"] for e in theirs["events"]) == ["class", "stream", "video"]
    assert all(e["hosting"] for e in theirs["events"])
    stats = theirs["stats"]
    assert all(isinstance(stats[k], int) for k in STATS)
    assert (stats["totalEvents"], stats["upcomingCalls"], stats["completedCalls"]) == (3, 1, 0)


def test_the_schedule_route_lists_booked_calls_with_the_page_s_stats(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    booking = book(fan, creator)
    schedule(creator)  # classes come to the page from /classes/enrolled|hosting, not here
    r = get(SCHEDULE, f"/schedule/{creator.id}", creator)
    assert r.status_code == 200, r.text
    body = r.json()
    (event,) = body[
        "events"
    ]  # SchedulePage.js:157-166 reads id, type, title, date, time, status, fan_username
    assert event["id"] == booking and event["type"] == "video" and event["fan_username"] == fan.username
    assert (
        isinstance(event["date"], str) and isinstance(event["time"], str) and isinstance(event["title"], str)
    )
    assert body["stats"] == {"totalEvents": 1, "upcomingCalls": 1, "completedCalls": 0, "revenue": 0}


def test_a_user_sees_only_their_own_calendar(make_user: MakeUser) -> None:
    fan, other, admin = make_user(), make_user(), make_user(role="admin")
    for file, path in ((EVENTS, f"/schedule/calendar-events/{fan.id}"), (SCHEDULE, f"/schedule/{fan.id}")):
        denied = get(file, path, other)
        assert denied.status_code == 403 and denied.headers["content-type"].startswith(
            "application/problem+json"
        )
        assert get(file, path, admin).status_code == 200
    assert get(SCHEDULE, "/schedule/not-a-user", fan).status_code == 422


def test_deleting_a_booked_call_cancels_it_and_tells_both_sides(make_user: MakeUser) -> None:
    fan, creator, stranger = make_user(balance=100), make_user(role="creator"), make_user()
    booking = book(fan, creator)
    assert delete(booking, stranger).status_code == 404
    before = len(outbox(realtime.user_channel(creator.id), "session:updated"))
    r = delete(booking, fan)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    told = outbox(realtime.user_channel(creator.id), "session:updated")
    assert len(told) == before + 1 and told[-1]["payload"]["status"] == "cancelled"
    assert outbox(realtime.user_channel(fan.id), "session:updated")[-1]["payload"]["status"] == "cancelled"
    requests = (
        functions.client("sessions/requests.py")
        .get("/api/v1/sessions/requests?status=cancelled", headers=creator.headers)
        .json()["requests"]
    )
    assert [q["id"] for q in requests] == [booking]
    assert delete(booking, fan).status_code == 200  # again: harmless, as cancelling again is
    events = get(EVENTS, f"/schedule/calendar-events/{fan.id}", fan).json()["events"]
    assert events == []


def test_deleting_a_class_event_cancels_it_or_gives_back_the_seat(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    cls = schedule(creator)
    join(fan, cls["id"])
    assert delete(f"class-{cls['id']}", fan).status_code == 200  # the fan gives back an unpaid seat
    hosting = get("classes/hosting/[user_id].py", f"/classes/hosting/{creator.id}", creator).json()["classes"]
    assert hosting[0]["enrolled_count"] == 0
    assert delete(f"hosting-{cls['id']}", creator).json()["status"] == "cancelled"
    assert get(EVENTS, f"/schedule/calendar-events/{creator.id}", creator).json()["events"] == []
    live = schedule(creator, title="Live one")
    start(creator, live["id"])
    r = delete(f"class-{live['id']}", creator)
    assert r.status_code == 409 and r.json()["code"] == "CLASS_ALREADY_STARTED"
    assert delete("class-nonsense", creator).status_code == 404

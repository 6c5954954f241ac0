"""Classes: the pages' request shapes, seats under a race, paying once at attendance, reviews, the class stream."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from lib import classes, db, users
from lib.errors import AppError
from tests import conftest
from tests.classes.helpers import attend, balance, call, class_postings, join, schedule, scheduler_body, start
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.support import functions

CARD_FIELDS = {  # ClassesPage.js ClassCard and SchedulePage.js:192-233
    "id": str,
    "title": str,
    "description": str,
    "category": str,
    "tags": list,
    "startTime": str,
    "duration": int,
    "maxParticipants": int,
    "currentParticipants": int,
    "tokenPrice": int,
    "isLive": bool,
    "scheduled_date": str,
    "scheduled_time": str,
    "creator_name": str,
    "creator_id": str,
    "price": int,
    "enrolled_count": int,
    "max_participants": int,
}


def _check_card(card: dict[str, Any]) -> None:
    for name, kind in CARD_FIELDS.items():
        assert isinstance(card[name], kind), (name, card[name])
    assert isinstance(card["creator"]["id"], str) and isinstance(card["creator"]["displayName"], str)
    assert isinstance(card["creator"]["rating"], (int, float))
    assert "coverImage" in card


def test_a_creator_schedules_a_class_as_the_scheduler_sends_it(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    cover = "https://cdn.example.test/c.png"
    cls = schedule(creator, coverImage=cover)
    _check_card(cls)
    assert (cls["tokenPrice"], cls["maxParticipants"], cls["currentParticipants"]) == (15, 20, 0)
    assert (
        cls["coverImage"] == cover
        and cls["status"] == "scheduled"
        and cls["creator"]["id"] == str(creator.id)
    )


def test_bad_class_bodies_are_clear_4xx(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user()
    past = datetime.now(UTC) - timedelta(hours=1)
    for over in (
        {"coverImage": "http://cdn.example.test/c.png"},
        {"coverImage": "javascript:alert(1)"},
        {"tokenPrice": "15"},
        {"maxParticipants": 0},
        {"startTime": past.isoformat()},
        {"title": ""},
    ):
        r = call("classes", "POST", "/classes", creator, json=scheduler_body(**over))
        assert r.status_code == 422, (over, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert call("classes", "POST", "/classes", fan, json=scheduler_body()).status_code == 403


def test_the_classes_page_lists_a_week_and_my_seats(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user(balance=100)
    soon = schedule(creator, start=datetime.now(UTC) + timedelta(hours=3))
    schedule(creator, start=datetime.now(UTC) + timedelta(days=20), title="Later")
    now = datetime.now(UTC)
    params = {
        "startDate": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "endDate": (now + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%S.999Z"),
    }
    r = call("classes", "GET", "/classes", params=params)  # signed out: no header at all
    assert r.status_code == 200, r.text
    listed = r.json()["classes"]
    assert [c["id"] for c in listed] == [soon["id"]]
    _check_card(listed[0])
    assert join(fan, soon["id"]).status_code == 200
    mine = call("enrolled", "GET", "/classes/enrolled", fan).json()
    assert mine["enrolledClassIds"] == [soon["id"]] and mine["classes"][0]["id"] == soon["id"]
    assert call("classes", "GET", "/classes", params={"startDate": "yesterday"}).status_code == 422


def test_enrolled_and_hosting_lists_are_their_owner_s(make_user: MakeUser) -> None:
    creator, fan, other = make_user(role="creator"), make_user(), make_user()
    admin = make_user(role="admin")
    cls = schedule(creator)
    join(fan, cls["id"])
    for who, status in ((fan, 200), (other, 403), (admin, 200)):
        r = call("enrolled_of", "GET", f"/classes/enrolled/{fan.id}", who)
        assert r.status_code == status, r.text
    hosting = call("hosting_of", "GET", f"/classes/hosting/{creator.id}", creator).json()["classes"]
    _check_card(hosting[0])
    assert hosting[0]["enrolled_count"] == 1
    assert call("hosting_of", "GET", f"/classes/hosting/{creator.id}", fan).status_code == 403
    enrolled = call("enrolled_of", "GET", f"/classes/enrolled/{fan.id}", fan).json()["classes"]
    assert enrolled[0]["id"] == cls["id"] and enrolled[0]["creator_name"] == creator.username


def _race(fans: list[conftest.TestUser], action: Any, class_id: UUID) -> tuple[int, int, list[BaseException]]:
    """Each fan on its own connection, released together: (succeeded, refused with a 4xx, errors)."""
    url = db.get_settings().database_url
    start_line = threading.Barrier(len(fans), timeout=20)
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0}
    errors: list[BaseException] = []
    with db.transaction() as conn:
        people = {f.id: users.get(conn, f.id) for f in fans}

    def one(fan: conftest.TestUser) -> None:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=5) as conn:
            start_line.wait()
            try:
                with conn.transaction():
                    action(conn, people[fan.id], class_id, datetime.now(UTC))
                outcome = "ok"
            except AppError:
                outcome = "refused"
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                counts[outcome] += 1

    with ThreadPoolExecutor(len(fans)) as pool:
        for f in [pool.submit(one, fan) for fan in fans]:
            f.result(timeout=60)
    return counts["ok"], counts["refused"], errors


def test_thirty_parallel_joins_for_ten_seats_leave_ten_enrolled_and_charged(make_user: MakeUser) -> None:
    creator = make_user(role="creator")
    fans = [make_user(balance=50) for _ in range(30)]
    cls = schedule(creator, maxParticipants=10, tokenPrice=20)
    class_id = UUID(cls["id"])
    ok, refused, errors = _race(fans, classes.join, class_id)
    assert not errors and (ok, refused) == (10, 20)
    with db.transaction() as conn:
        seats = conn.execute(
            "SELECT count(*) AS n, (SELECT enrolled_count FROM classes WHERE id = %(c)s) AS counted "
            "FROM class_enrollments WHERE class_id = %(c)s",
            {"c": class_id},
        ).fetchone()
    assert seats is not None and (seats["n"], seats["counted"]) == (10, 10)
    start(creator, cls["id"])
    # Everyone opens the live class at once: only the ten seated pay, each once.
    ok, refused, errors = _race(fans, classes.mark_attendance, class_id)
    assert not errors and (ok, refused) == (10, 20)
    paid = [f for f in fans if balance(f) == 30]
    assert len(paid) == 10 and all(balance(f) == 50 for f in fans if f not in paid)
    assert class_postings(cls["id"]) == 10 and balance(creator) == 200
    assert_books_balance()


def test_attendance_charges_once_however_often_it_is_retried(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user(balance=100)
    cls = schedule(creator, tokenPrice=15)
    assert join(fan, cls["id"]).json()["alreadyEnrolled"] is False
    again = join(fan, cls["id"]).json()  # a retried join is the same seat
    assert again["alreadyEnrolled"] is True and again["currentParticipants"] == 1
    r = attend(fan, cls["id"])
    assert r.status_code == 409 and r.json()["code"] == "CLASS_NOT_LIVE"  # nothing charged before it is live
    start(creator, cls["id"])
    first = attend(fan, cls["id"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["alreadyPaid"] is False and body["tokensPaid"] == 15 and isinstance(body["tokensPaid"], int)
    for _ in range(3):  # the page retries, rejoins, opens a second tab
        repeat = attend(fan, cls["id"]).json()
        assert repeat["alreadyPaid"] is True and repeat["tokensPaid"] == 15
    assert balance(fan) == 85 and class_postings(cls["id"]) == 1 and balance(creator) == 15
    assert_books_balance()


def test_attendance_without_enough_tokens_says_what_is_needed(make_user: MakeUser) -> None:
    creator, fan = make_user(role="creator"), make_user(balance=5)
    cls = schedule(creator, tokenPrice=15)
    join(fan, cls["id"])
    start(creator, cls["id"])
    r = attend(fan, cls["id"])
    assert r.status_code == 402
    body = r.json()  # StreamingLayout.js:196 compares `error` and reads required/current/needed
    assert body["error"] == "Insufficient token balance" and body["code"] == "INSUFFICIENT_TOKENS"
    assert (body["required"], body["current"], body["needed"]) == (15, 5, 10)
    assert balance(fan) == 5 and class_postings(cls["id"]) == 0


def test_only_seated_fans_attend_and_a_full_class_says_so(make_user: MakeUser) -> None:
    creator, fan, late = make_user(role="creator"), make_user(balance=50), make_user(balance=50)
    cls = schedule(creator, maxParticipants=1)
    assert join(fan, cls["id"]).status_code == 200
    full = join(late, cls["id"])
    assert full.status_code == 409 and full.json()["code"] == "CLASS_FULL"
    start(creator, cls["id"])
    r = attend(late, cls["id"])
    assert r.status_code == 403 and r.json()["code"] == "NOT_ENROLLED"
    assert join(creator, cls["id"]).status_code == 400


def test_reviews_come_after_attendance_only(make_user: MakeUser) -> None:
    creator, fan, seated = make_user(role="creator"), make_user(balance=50), make_user(balance=50)
    cls = schedule(creator, tokenPrice=10)
    join(fan, cls["id"])
    join(seated, cls["id"])
    body = {
        "classId": cls["id"],
        "rating": 5,
        "review": "Great class",
        "userId": str(fan.id),
        "userName": "Fan",
        "userAvatar": None,
    }  # ClassReviewModal.js:49
    r = call("reviews", "POST", f"/classes/{cls['id']}/reviews", fan, json=body)
    assert r.status_code == 403 and r.json()["code"] == "NOT_ATTENDED"
    start(creator, cls["id"])
    attend(fan, cls["id"])
    r = call("reviews", "POST", f"/classes/{cls['id']}/reviews", fan, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["review"]["rating"] == 5 and r.json()["review"]["userName"] == fan.username
    again = call("reviews", "POST", f"/classes/{cls['id']}/reviews", fan, json=body)
    assert again.status_code == 409
    r = call("reviews", "POST", f"/classes/{cls['id']}/reviews", seated, json=body)
    assert r.status_code == 403  # seated but never attended
    bad = call("reviews", "POST", f"/classes/{cls['id']}/reviews", fan, json={**body, "rating": 6})
    assert bad.status_code == 422
    listed = call("reviews", "GET", f"/classes/{cls['id']}/reviews").json()  # ClassReviews.js:32, signed out
    review = listed["reviews"][0]
    for name, kind in (("id", str), ("rating", int), ("review", str), ("userName", str), ("createdAt", str)):
        assert isinstance(review[name], kind)
    assert "userAvatar" in review and isinstance(review["helpful"], int)
    stats = listed["stats"]
    assert (
        stats["averageRating"] == 5 and stats["totalReviews"] == 1 and stats["ratingDistribution"]["5"] == 1
    )
    card = call("classes", "GET", "/classes").json()["classes"][0]
    assert card["creator"]["rating"] == 5 and card["creator"]["reviewCount"] == 1


def test_the_class_stream_admits_enrolled_fans_only(make_user: MakeUser) -> None:
    creator, fan, stranger = make_user(role="creator"), make_user(balance=50), make_user(balance=50)
    cls = schedule(creator)
    join(fan, cls["id"])
    started = start(creator, cls["id"])
    assert started["alreadyLive"] is False and started["stream"]["agora"]["token"]
    assert start(creator, cls["id"])["alreadyLive"] is True  # pressing again: the same stream
    assert call("start", "POST", f"/classes/{cls['id']}/start-stream", fan).status_code == 403
    viewer = functions.client("streaming/stream/[stream_ref].py")
    ok = viewer.get(f"/api/v1/streaming/stream/{started['channel']}", headers=fan.headers)
    assert ok.status_code == 200, ok.text
    no = viewer.get(f"/api/v1/streaming/stream/{started['channel']}", headers=stranger.headers)
    assert no.status_code == 403 and no.json()["code"] == "CLASS_ENROLLMENT_REQUIRED"
    # The other ways into the stream follow the same guest list: an Agora token and the stream's Pusher channel.
    agora = functions.client("agora/token.py")
    for who, status in ((fan, 200), (stranger, 403)):
        token = agora.get(
            f"/api/v1/agora/token?channel={started['channel']}&role=audience", headers=who.headers
        )
        assert token.status_code == status, token.text
        sub = functions.client("realtime/pusher/auth.py").post(
            "/api/realtime/pusher/auth",
            data={"socket_id": "1234.5678", "channel_name": f"private-stream-{started['channel']}"},
            headers=who.headers,
        )
        assert sub.status_code == status, sub.text
    listed = call("classes", "GET", "/classes").json()["classes"][0]
    assert listed["isLive"] is True and listed["status"] == "live"

"""A creator is in at most one ringing or active call, enforced by the database under real concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg
import pytest

from lib import calls, db, ledger
from tests.calls.helpers import as_user, client, connect, in_tx, place, real_now, seconds
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person


def test_ten_fans_requesting_at_once_ring_exactly_once(make_user: MakeUser, creator: Person) -> None:
    fans = [make_user(balance=50) for _ in range(10)]
    barrier = threading.Barrier(len(fans), timeout=20)
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def ask(fan: Person) -> None:
        http = client("calls/request.py")
        barrier.wait()
        r = http.post(
            "/api/calls/request",
            json={"creatorId": str(creator.id), "callType": "video"},
            headers=fan.headers,
        )
        with lock:
            answers.append((r.status_code, r.json().get("code")))

    threads = [threading.Thread(target=ask, args=(fan,)) for fan in fans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(answers) == Counter({(200, None): 1, (409, "CREATOR_BUSY"): 9})
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM call_sessions WHERE creator_id = %(c)s AND state IN ('ringing', 'active')",
            {"c": creator.id},
        ).fetchone()
    assert row is not None and row["n"] == 1


def test_a_creator_in_an_active_call_is_busy(fan: Person, creator: Person, outsider: Person) -> None:
    connect(fan, creator, real_now())
    r = client("calls/request.py").post(
        "/api/calls/request",
        json={"creatorId": str(creator.id), "callType": "voice"},
        headers=outsider.headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "CREATOR_BUSY"
    invite = client("calls/initiate.py").post(
        "/api/calls/initiate", json={"fanId": str(outsider.id), "callType": "video"}, headers=creator.headers
    )
    assert invite.status_code == 409 and invite.json()["code"] == "CREATOR_BUSY"


def test_the_database_itself_refuses_a_second_live_call(
    fan: Person, creator: Person, outsider: Person
) -> None:
    connect(fan, creator, real_now())
    with pytest.raises(psycopg.errors.UniqueViolation), db.transaction() as conn:
        conn.execute(
            """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, channel, rate_per_minute,
                                          ring_expires_at)
               VALUES (%(f)s, %(c)s, %(f)s, 'video', 'call-second', 10, now() + interval '45 seconds')""",
            {"f": outsider.id, "c": creator.id},
        )


# --- one live call per user, on either side (issue 11) -----------------------------------------------------------


def _request(who: Person, creator_id: object, call_type: str = "video") -> tuple[int, str | None]:
    r = client("calls/request.py").post(
        "/api/calls/request", json={"creatorId": str(creator_id), "callType": call_type}, headers=who.headers
    )
    return r.status_code, r.json().get("code")


def _live_calls(user: Person) -> int:
    with db.transaction() as conn:
        row = conn.execute(
            """SELECT count(*) AS n FROM call_sessions
               WHERE (fan_id = %(u)s OR creator_id = %(u)s) AND state IN ('ringing', 'active')""",
            {"u": user.id},
        ).fetchone()
    assert row is not None
    return int(row["n"])


def test_a_creator_in_an_active_call_cannot_call_another_creator_as_the_fan(
    make_user: MakeUser, fan: Person, creator: Person
) -> None:
    other = make_user(role="creator", balance=100)
    connect(fan, creator, real_now())  # the creator earned minute 1: enough to pay `other` for one
    assert _request(creator, other.id) == (409, "FAN_BUSY")
    assert _live_calls(creator) == 1 and _live_calls(other) == 0


def test_a_fan_in_an_active_call_cannot_request_a_second_creator(
    make_user: MakeUser, fan: Person, creator: Person
) -> None:
    other = make_user(role="creator")
    connect(fan, creator, real_now())
    assert _request(fan, other.id) == (409, "FAN_BUSY")
    assert _live_calls(other) == 0


def test_a_fan_being_rung_cannot_be_rung_by_another_creator(make_user: MakeUser, fan: Person) -> None:
    creator, other = make_user(role="creator", balance=100), make_user(role="creator")
    place(fan, creator, real_now())
    invite = client("calls/initiate.py").post(
        "/api/calls/initiate", json={"fanId": str(fan.id), "callType": "video"}, headers=other.headers
    )
    assert invite.status_code == 409 and invite.json()["code"] == "FAN_BUSY"
    # A creator who is being rung cannot ring someone else either.
    assert _request(creator, other.id)[0] == 409


def test_a_stale_ring_does_not_keep_the_fan_busy(make_user: MakeUser, fan: Person, creator: Person) -> None:
    other = make_user(role="creator")
    place(fan, creator, real_now() - seconds(60))  # rang out a while ago; no sweep has run
    assert _request(fan, other.id) == (200, None)


def test_one_fan_requesting_six_creators_at_once_rings_exactly_one(make_user: MakeUser) -> None:
    fan = make_user(balance=500)
    creators = [make_user(role="creator") for _ in range(6)]
    barrier = threading.Barrier(len(creators), timeout=20)
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def ask(creator: Person) -> None:
        barrier.wait()
        answer = _request(fan, creator.id)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=ask, args=(c,)) for c in creators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(answers) == Counter({(200, None): 1, (409, "FAN_BUSY"): 5})
    assert _live_calls(fan) == 1


def test_two_creators_calling_each_other_at_once_make_one_call_and_never_deadlock(
    make_user: MakeUser,
) -> None:
    pairs = [
        (make_user(role="creator", balance=100), make_user(role="creator", balance=100)) for _ in range(4)
    ]
    asks = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    barrier = threading.Barrier(len(asks), timeout=20)
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def ask(caller: Person, callee: Person) -> None:
        barrier.wait()
        answer = _request(caller, callee.id)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=ask, args=pair) for pair in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(status for status, _ in answers) == [200] * 4 + [409] * 4
    for a, b in pairs:
        assert _live_calls(a) == 1 and _live_calls(b) == 1


def test_the_database_itself_refuses_a_fan_in_two_live_calls(
    make_user: MakeUser, fan: Person, creator: Person
) -> None:
    other = make_user(role="creator")
    connect(fan, creator, real_now())
    with pytest.raises(psycopg.errors.UniqueViolation), db.transaction() as conn:
        conn.execute(
            """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, channel, rate_per_minute,
                                          ring_expires_at)
               VALUES (%(f)s, %(c)s, %(f)s, 'video', 'call-double', 10, now() + interval '45 seconds')""",
            {"f": fan.id, "c": other.id},
        )
    # ...nor a creator who is the fan of one call and the creator of another.
    with pytest.raises(psycopg.errors.UniqueViolation), db.transaction() as conn:
        conn.execute(
            """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, channel, rate_per_minute,
                                          ring_expires_at)
               VALUES (%(f)s, %(c)s, %(f)s, 'video', 'call-cross', 10, now() + interval '45 seconds')""",
            {"f": creator.id, "c": other.id},
        )


def test_an_ended_call_frees_both_sides(make_user: MakeUser, fan: Person, creator: Person) -> None:
    other = make_user(role="creator")
    call_id = connect(fan, creator, real_now())
    in_tx(calls.end, as_user(fan), call_id, real_now())
    assert _request(fan, other.id) == (200, None)
    assert _request(make_user(balance=100), creator.id) == (200, None)


# --- never the platform's system account (issue 11) -------------------------------------------------------------


def test_a_creator_cannot_ring_the_platform_account(creator: Person) -> None:
    with db.transaction() as conn:
        ledger.ensure_platform_account(conn)
    r = client("calls/initiate.py").post(
        "/api/calls/initiate",
        json={"fanId": str(ledger.PLATFORM_USER_ID), "callType": "video"},
        headers=creator.headers,
    )
    assert r.status_code == 404 and r.json()["code"] == "USER_NOT_FOUND"
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_fan_cannot_request_the_platform_account_even_if_it_looks_like_a_creator(fan: Person) -> None:
    with db.transaction() as conn:
        ledger.ensure_platform_account(conn)
        conn.execute(
            "UPDATE users SET is_creator = true, video_price = 10 WHERE id = %(id)s",
            {"id": ledger.PLATFORM_USER_ID},
        )
    assert _request(fan, ledger.PLATFORM_USER_ID) == (404, "CREATOR_NOT_FOUND")

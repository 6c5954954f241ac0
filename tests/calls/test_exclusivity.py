"""A creator is in at most one ringing or active call, enforced by the database under real concurrency."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg
import pytest

from lib import db
from tests.calls.helpers import client, connect, real_now
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

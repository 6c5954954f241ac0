"""Idempotency-Key (lib.idempotency, used by tips here): replay, reuse with another body, in flight."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from lib import db, idempotency, ledger
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance
from tests.support.functions import client

TIPS = "tips/send.py"


def send(user: Any, body: dict[str, Any], key: str | None) -> Any:
    headers = dict(user.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client(TIPS).post("/api/tips/send", json=body, headers=headers)


def test_same_key_same_body_replays_the_first_response_without_a_second_tip(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 10}
    first = send(fan, body, "key-1")
    again = send(
        fan, {"amountTokens": 10, "toCreatorId": str(creator.id)}, "key-1"
    )  # same body, other key order
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotency-Replayed"] == "true" and "Idempotency-Replayed" not in first.headers
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 90
        assert conn.execute("SELECT count(*) AS n FROM tips").fetchone() == {"n": 1}
    assert_books_balance()


def test_same_key_different_body_is_422_reused(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    assert send(fan, {"toCreatorId": str(creator.id), "amountTokens": 10}, "key-2").status_code == 200
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 11}, "key-2")
    assert (r.status_code, r.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 90


def test_keys_belong_to_their_user(make_user: MakeUser) -> None:
    a, b, creator = make_user(balance=10), make_user(balance=10), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 10}
    assert send(a, body, "shared").status_code == 200
    r = send(b, body, "shared")
    assert r.status_code == 200 and "Idempotency-Replayed" not in r.headers
    with db.transaction() as conn:
        assert ledger.balance(conn, creator.id) == 20


def test_a_failed_attempt_records_nothing_and_the_key_can_be_retried(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=5), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 10}
    assert send(fan, body, "retry-me").status_code == 402
    with db.transaction() as conn:
        ledger.credit(
            conn,
            user_id=fan.id,
            amount=5,
            kind="adjustment",
            reference_type="t",
            reference_id="top-up",
            idempotency_key="top-up",
        )
    assert send(fan, body, "retry-me").status_code == 200
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 0


def test_a_key_in_flight_is_409(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    body = {"toCreatorId": str(creator.id), "amountTokens": 10}
    results: dict[str, Any] = {}
    # Hold the fan's row so the first request waits inside its transaction, key lock held.
    with psycopg.connect(db.get_settings().database_url) as blocker:
        blocker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (fan.id,))
        first = threading.Thread(target=lambda: results.setdefault("first", send(fan, body, "busy")))
        first.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = blocker.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        second = send(fan, body, "busy")
        blocker.rollback()
        first.join(20)
    assert (second.status_code, second.json()["code"]) == (409, "IDEMPOTENCY_KEY_IN_FLIGHT")
    assert results["first"].status_code == 200
    third = send(fan, body, "busy")
    assert third.status_code == 200 and third.headers["Idempotency-Replayed"] == "true"
    with db.transaction() as conn:
        assert ledger.balance(conn, fan.id) == 90


def test_key_longer_than_255_is_422(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    r = send(fan, {"toCreatorId": str(creator.id), "amountTokens": 1}, "k" * 256)
    assert r.status_code == 422
    assert send(fan, {"toCreatorId": str(creator.id), "amountTokens": 1}, "k" * 255).status_code == 200


def test_fingerprint_ignores_whitespace_and_key_order_but_not_values() -> None:
    fp = idempotency.fingerprint
    assert fp("POST", "/api/x", b'{"a": 1, "b": 2}') == fp("POST", "/api/x", b'{"b":2,"a":1}')
    assert fp("POST", "/api/x", b'{"a": 1}') != fp("POST", "/api/x", b'{"a": 2}')
    assert fp("POST", "/api/x", b'{"a": 1}') != fp("POST", "/api/y", b'{"a": 1}')


def test_expired_records_are_purged(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=100), make_user(role="creator")
    send(fan, {"toCreatorId": str(creator.id), "amountTokens": 1}, "old")
    with db.transaction() as conn:
        assert idempotency.purge_expired(conn) == 0
        with psycopg.connect(db.get_settings().database_url, autocommit=True) as other:
            other.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        assert idempotency.purge_expired(conn) == 1

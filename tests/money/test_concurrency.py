"""25 tips of 10 against a balance of 100, at once, over real parallel connections: exactly 10 go through."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lib import db, ledger
from lib.errors import PaymentRequired
from localdev import vercel_router
from tests import conftest
from tests.conftest import MakeUser
from tests.money.conftest import assert_books_balance

TIPS, AMOUNT, BALANCE = 25, 10, 100
Spend = Callable[[db.Conn, uuid.UUID, uuid.UUID, int], None]


@dataclass
class Outcome:
    """What the race produced."""

    succeeded: int
    refused: int
    errors: list[BaseException]
    final_balance: int
    creator_balance: int


def ledger_spend(conn: db.Conn, fan: uuid.UUID, creator: uuid.UUID, amount: int) -> None:
    """The real thing."""
    ledger.transfer(
        conn,
        from_user=fan,
        to_user=creator,
        amount=amount,
        kind="tip",
        reference_type="test",
        reference_id="race",
        idempotency_key=uuid.uuid4().hex,
    )


def read_then_write_spend(conn: db.Conn, fan: uuid.UUID, creator: uuid.UUID, amount: int) -> None:
    """The bug the ledger exists to prevent: read the balance, decide, then write what was read minus amount."""
    row = conn.execute("SELECT token_balance FROM users WHERE id = %s", (fan,)).fetchone()
    assert row is not None
    if row["token_balance"] < amount:
        raise PaymentRequired("Insufficient tokens")
    conn.execute("SELECT pg_sleep(0.05)")  # a request doing other work between its read and its write
    after = row["token_balance"] - amount
    conn.execute("UPDATE users SET token_balance = %s WHERE id = %s", (after, fan))
    conn.execute("UPDATE users SET token_balance = token_balance + %s WHERE id = %s", (amount, creator))


def race(spend: Spend, fan: conftest.TestUser, creator: conftest.TestUser) -> Outcome:
    """TIPS threads, each on its own connection, released together."""
    url = db.get_settings().database_url
    start = threading.Barrier(TIPS, timeout=20)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=5) as conn:
            start.wait()
            try:
                with conn.transaction():
                    spend(conn, fan.id, creator.id, AMOUNT)
                outcome = "ok"
            except PaymentRequired:
                outcome = "402"
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                results.append(outcome)

    with ThreadPoolExecutor(TIPS) as pool:
        for f in [pool.submit(one) for _ in range(TIPS)]:
            f.result(timeout=60)
    with db.transaction() as conn:
        final = ledger.balance(conn, fan.id)
        earned = ledger.balance(conn, creator.id)
    return Outcome(results.count("ok"), results.count("402"), errors, final, earned)


def assert_exactly_ten(outcome: Outcome) -> None:
    """The property under test: 10 succeed, 15 are refused, nothing lost or created."""
    assert not outcome.errors, outcome.errors
    assert (outcome.succeeded, outcome.refused) == (BALANCE // AMOUNT, TIPS - BALANCE // AMOUNT), outcome
    assert outcome.final_balance == 0, outcome
    assert outcome.creator_balance == BALANCE, outcome


def test_concurrent_tips_through_the_ledger_spend_exactly_the_balance(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=BALANCE), make_user(role="creator")
    assert_exactly_ten(race(ledger_spend, fan, creator))
    assert_books_balance()


def test_the_race_test_catches_a_read_then_write_debit(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=BALANCE), make_user(role="creator")
    outcome = race(read_then_write_spend, fan, creator)
    # Lost updates: more tips "succeed" than the balance pays for, and tokens appear from nowhere.
    with pytest.raises(AssertionError):
        assert_exactly_ten(outcome)
    assert outcome.succeeded > BALANCE // AMOUNT


def test_concurrent_tip_requests_over_http(make_user: MakeUser) -> None:
    fan, creator = make_user(balance=BALANCE), make_user(role="creator")
    with vercel_router.running() as server, httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/api/tokens/balance", headers=fan.headers).raise_for_status()  # load the functions first
        start = threading.Barrier(TIPS, timeout=20)

        def one(n: int) -> int:
            start.wait()
            # Distinct messages: identical bodies sent at once would be one request retried (lib/tips).
            r = client.post(
                "/api/v1/tips/send",
                json={"toCreatorId": str(creator.id), "amountTokens": AMOUNT, "message": f"tip {n}"},
                headers=fan.headers,
            )
            return r.status_code

        with ThreadPoolExecutor(TIPS) as pool:
            codes = list(pool.map(one, range(TIPS), timeout=60))
        balance = client.get("/api/tokens/balance", headers=fan.headers).json()["balance"]
    assert sorted(codes) == [200] * 10 + [402] * 15, codes
    assert balance == 0
    assert_books_balance()

"""PostgreSQL unreachable, hanging, or killed mid-request during a purchase webhook and a tip.

Each failing attempt must answer a 503 problem (so Stripe and clients retry; never a 500), leave nothing behind,
and the retried delivery or request must then complete exactly once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
import pytest

from lib import db
from lib.config import get_settings
from tests.conftest import ADMIN_URL, SetEnv
from tests.conftest import TestUser as Person
from tests.faults import servers
from tests.faults.books import (
    WEBHOOK,
    WEBHOOK_PATH,
    assert_books_balance,
    balance,
    count,
    intent_succeeded,
    new_pi,
    signed,
)
from tests.faults.conftest import Timed, call, record

TIP = "tips/send.py"
TIP_PATH = "/api/tips/send"


@contextmanager
def database_down(mode: str, set_env: SetEnv) -> Iterator[float]:
    """DATABASE_URL pointed at a refused port or a server that accepts and never answers; yields the time bound.

    Either answers within the connect and pool timeouts (3 s by default); a refused one is no faster, because the
    pool keeps retrying in the background until the request's wait for a connection times out.
    """
    good = get_settings().database_url
    with servers.hanging() as hang:
        port = servers.dead_port() if mode == "refused" else hang.port
        set_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/digis")
        s = get_settings()
        # Even a refused connection waits: the pool keeps retrying in the background until its timeout. The
        # second on top is the request's own work (a rate-limit check on a cold Redis client, auth, the answer).
        bound = max(s.db_connect_timeout_s, s.db_pool_timeout_s) + 1.0
        try:
            yield bound
        finally:
            set_env(DATABASE_URL=good)


def assert_503(t: Timed, bound: float) -> None:
    """A 503 problem saying the database is unavailable, within `bound` seconds."""
    assert t.status == 503, t.response.text
    assert t.response.headers["content-type"].startswith("application/problem+json")
    assert t.json()["code"] == "DB_UNAVAILABLE"
    assert t.total_s < bound, f"took {t.total_s:.2f}s, bound {bound}s"


def deliver(payload: bytes) -> Timed:
    """POST a signed webhook body to the webhook function."""
    return call(WEBHOOK, "POST", WEBHOOK_PATH, content=payload, headers=signed(payload))


def tip(fan: Person, creator: Person, amount: int, key: str) -> Timed:
    """POST /tips/send with an Idempotency-Key."""
    return call(
        TIP,
        "POST",
        TIP_PATH,
        json={"toCreatorId": str(creator.id), "amountTokens": amount},
        headers={**fan.headers, "Idempotency-Key": key},
    )


def assert_nothing_from_the_webhook(fan: Person, before: int) -> None:
    assert count("stripe_events") == 0
    assert count("payments") == 0
    assert count("token_transactions", "user_id = %(u)s AND type = 'purchase'", {"u": fan.id}) == 0
    assert balance(fan.id) == before


def assert_nothing_from_the_tip(fan: Person, creator: Person) -> None:
    assert count("tips") == 0
    assert count("idempotency_keys") == 0
    assert count("realtime_outbox") == 0
    assert (balance(fan.id), balance(creator.id)) == (100, 0)


def assert_webhook_retry_credits_once(fan: Person, payload: bytes, before: int, tokens: int) -> None:
    first, again = deliver(payload), deliver(payload)
    assert first.status == 200 and first.json()["duplicate"] is False, first.response.text
    assert again.status == 200 and again.json()["duplicate"] is True
    assert balance(fan.id) == before + tokens
    assert count("token_transactions", "user_id = %(u)s AND type = 'purchase'", {"u": fan.id}) == 1
    assert_books_balance()


def assert_tip_retry_completes_once(fan: Person, creator: Person, key: str) -> None:
    first, again = tip(fan, creator, 30, key), tip(fan, creator, 30, key)
    assert first.status == 200, first.response.text
    assert first.json()["new_balance"] == 70
    assert again.status == 200 and again.response.headers.get("Idempotency-Replayed") == "true"
    assert again.json() == first.json()
    assert count("tips") == 1
    assert (balance(fan.id), balance(creator.id)) == (70, 30)
    assert_books_balance()


@pytest.mark.parametrize("mode", ["refused", "hanging"])
def test_purchase_webhook_with_the_database_down_is_503_and_the_redelivery_credits_once(
    fan: Person, set_env: SetEnv, mode: str
) -> None:
    payload = intent_succeeded(new_pi(), fan.id, 200, 1900)
    with database_down(mode, set_env) as bound:
        t = deliver(payload)
    assert_503(t, bound)
    record(f"postgres {mode}: webhook answered 503 in {t.ms()} (bound {bound:.1f}s)")
    assert_nothing_from_the_webhook(fan, 100)
    assert_webhook_retry_credits_once(fan, payload, 100, 200)


@pytest.mark.parametrize("mode", ["refused", "hanging"])
def test_tip_with_the_database_down_is_503_and_the_retry_tips_once(
    fan: Person, creator: Person, set_env: SetEnv, mode: str
) -> None:
    key = str(uuid.uuid4())
    with database_down(mode, set_env) as bound:
        t = tip(fan, creator, 30, key)
    assert_503(t, bound)
    record(f"postgres {mode}: tip answered 503 in {t.ms()} (bound {bound:.1f}s)")
    assert_nothing_from_the_tip(fan, creator)
    assert_tip_retry_completes_once(fan, creator, key)


@contextmanager
def backend_killed_while_waiting(user: Person) -> Iterator[Any]:
    """Hold `user`'s row lock; the block's request waits on it and has its backend terminated mid-transaction.

    Yields a function that runs a request in a thread, kills its backend once it waits on the lock, and returns
    the request's Timed result.
    """
    with psycopg.connect(get_settings().database_url, autocommit=False) as blocker:
        blocker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user.id,))

        def run(request: Any) -> Timed:
            out: list[Timed] = []
            worker = threading.Thread(target=lambda: out.append(request()), daemon=True)
            worker.start()
            pids: list[int] = []

            def waiting() -> bool:
                with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                    rows = admin.execute(
                        """SELECT pid FROM pg_stat_activity
                           WHERE datname = %s AND application_name = 'digis-api' AND wait_event_type = 'Lock'""",
                        (psycopg.conninfo.conninfo_to_dict(get_settings().database_url)["dbname"],),
                    ).fetchall()
                pids[:] = [r[0] for r in rows]
                return bool(pids)

            servers.wait_until(waiting, 10, "the request blocking on the row lock", interval_s=0.05)
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                for pid in pids:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            worker.join(15)
            assert out, "the request did not finish after its backend was terminated"
            return out[0]

        yield run
        blocker.rollback()


def test_webhook_whose_backend_dies_mid_transaction_is_503_and_leaves_no_event_or_payment(
    fan: Person,
) -> None:
    payload = intent_succeeded(new_pi(), fan.id, 433, 3900)
    with backend_killed_while_waiting(fan) as run:
        # By the time it waits on the fan's row it has written stripe_events and payments in its transaction.
        t = run(lambda: deliver(payload))
    assert t.status == 503, t.response.text
    assert t.json()["code"] == "DB_UNAVAILABLE"
    record(f"postgres backend terminated mid-webhook: 503 in {t.ms()} (includes the wait for the kill)")
    assert_nothing_from_the_webhook(fan, 100)
    assert_webhook_retry_credits_once(fan, payload, 100, 433)


def test_tip_whose_backend_dies_mid_transaction_is_503_and_the_retry_tips_once(
    fan: Person, creator: Person
) -> None:
    key = str(uuid.uuid4())
    with backend_killed_while_waiting(creator) as run:
        t = run(lambda: tip(fan, creator, 30, key))
    assert t.status == 503, t.response.text
    assert t.json()["code"] == "DB_UNAVAILABLE"
    record(f"postgres backend terminated mid-tip: 503 in {t.ms()}")
    assert_nothing_from_the_tip(fan, creator)
    assert_tip_retry_completes_once(fan, creator, key)


def kill_warm_pool(connections: int) -> None:
    """Open `connections` pooled connections, return them idle, then terminate their backends (a restart)."""
    with ExitStack() as stack:
        for _ in range(connections):
            stack.enter_context(db.transaction()).execute("SELECT 1")
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        killed = admin.execute(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE datname = %s AND application_name = 'digis-api'""",
            (psycopg.conninfo.conninfo_to_dict(get_settings().database_url)["dbname"],),
        ).fetchone()
    assert killed is not None and killed[0] == connections


def test_after_a_database_restart_a_retried_tip_completes_once(
    fan: Person, creator: Person, set_env: SetEnv
) -> None:
    set_env(DB_POOL_MAX="4")  # the production default
    kill_warm_pool(4)
    key = str(uuid.uuid4())
    first = tip(fan, creator, 30, key)
    record(f"postgres restarted under a warm pool of 4: first request {first.status} in {first.ms()}")
    if first.status != 200:
        assert first.status == 503 and first.json()["code"] == "DB_UNAVAILABLE", first.response.text
        assert_nothing_from_the_tip(fan, creator)
    assert_tip_retry_completes_once(fan, creator, key)


def test_after_a_database_restart_the_next_request_is_served_at_once(
    fan: Person, creator: Person, set_env: SetEnv
) -> None:
    set_env(DB_POOL_MAX="4")
    kill_warm_pool(4)
    t = tip(fan, creator, 30, str(uuid.uuid4()))
    assert t.status == 200, f"{t.status} after {t.ms()}: {t.response.text}"
    assert t.response_s < 1.0, t.ms()

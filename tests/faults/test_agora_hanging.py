"""Agora's REST API hanging while calls run out of tokens: the kick after the commit times out, the breaker opens
after its threshold (later kicks fail fast without a connection), and billing and hanging up are unaffected in
time and in money."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lib import agora, calls
from lib.config import get_settings
from localdev.qstash_server import sign
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person
from tests.faults import servers
from tests.faults.books import assert_books_balance, balance
from tests.faults.conftest import Timed, call, record

BILL_PATH = "/api/jobs/bill-call"
CALLS = 5
RATE = 10  # the test creators' video price per minute


class Clock:
    """The `now` the call routes see (lib.calls.utcnow), moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Call routes run two minutes in the past, so billing minute 2 is due at the real present."""
    c = Clock(datetime.now(UTC) - timedelta(seconds=120))
    monkeypatch.setattr(calls, "utcnow", c)
    return c


def bill_job(call_id: str, minute: int) -> Timed:
    """A QStash delivery of /jobs/bill-call, signed as QStash signs it."""
    body = json.dumps({"callId": call_id, "minute": minute}, separators=(",", ":")).encode()
    url = TEST_ENV["PUBLIC_BASE_URL"] + BILL_PATH
    headers = {
        "Content-Type": "application/json",
        "Upstash-Signature": sign(TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"], url=url, body=body),
        "Upstash-Message-Id": f"msg_{uuid.uuid4().hex}",
        "Upstash-Retried": "0",
    }
    return call("jobs/bill-call.py", "POST", BILL_PATH, content=body, headers=headers)


def connect(fan: Person, creator: Person, clock: Clock, at: datetime) -> str:
    """Request at `at` - 5 s, accept at `at` (minute 1 charged), both heartbeat 30 s in."""
    clock.now = at - timedelta(seconds=5)
    r = call(
        "calls/request.py",
        "POST",
        "/api/calls/request",
        json={"creatorId": str(creator.id)},
        headers=fan.headers,
    )
    assert r.status == 200, r.response.text
    call_id = str(r.json()["callId"])
    clock.now = at
    assert (
        call(
            "calls/[call_id]/accept.py", "POST", f"/api/calls/{call_id}/accept", headers=creator.headers
        ).status
        == 200
    )
    clock.now = at + timedelta(seconds=30)
    for who in (fan, creator):
        hb = call(
            "calls/[call_id]/heartbeat.py", "POST", f"/api/calls/{call_id}/heartbeat", headers=who.headers
        )
        assert hb.status == 200 and hb.json()["state"] == "active", hb.response.text
    return call_id


def test_agora_hanging_opens_the_breaker_and_billing_is_unaffected(
    make_user: MakeUser, set_env: SetEnv, clock: Clock
) -> None:
    with servers.hanging() as agora_api:
        set_env(AGORA_CUSTOMER_ID="customer", AGORA_CUSTOMER_SECRET="secret", AGORA_REST_BASE=agora_api.url)
        timeout_s = get_settings().agora_timeout_s
        start = clock.now
        pairs = [(make_user(balance=RATE), make_user(role="creator")) for _ in range(CALLS)]
        ids = [connect(fan, creator, clock, start) for fan, creator in pairs]
        # Minute 2 is due; no fan can pay it: each call ends and its fan is kicked after the commit.
        clock.now = start + timedelta(seconds=60)
        timings = []
        for n, call_id in enumerate(ids):
            t = bill_job(call_id, 2)
            assert t.status == 200 and t.json()["status"] == "ended", t.response.text
            timings.append(t)
            assert agora.breaker.is_open == (n + 1 >= agora.breaker.threshold)
        attempts = agora_api.accepted
    record(
        f"agora hanging (timeout {timeout_s}s, breaker after {agora.breaker.threshold}): bill-call jobs "
        + ", ".join(t.ms() for t in timings)
        + f"; Agora saw {attempts} connections"
    )
    assert attempts == agora.breaker.threshold  # once open, no connection is even attempted
    for n, t in enumerate(timings):
        assert t.response_s < 1.0, f"job {n} answered after {t.ms()}"  # the kick runs after the response
        if n < agora.breaker.threshold:
            assert timeout_s - 0.2 < t.total_s < timeout_s + 1.0, t.ms()  # bounded by AGORA_TIMEOUT_S
        else:
            assert t.total_s < 0.5, f"job {n} after the breaker opened: {t.ms()}"  # fails fast
    for (fan, creator), call_id in zip(pairs, ids, strict=True):
        status = call(
            "calls/[call_id]/status.py", "GET", f"/api/calls/{call_id}/status", headers=fan.headers
        ).json()
        assert (status["state"], status["endReason"], status["totalCost"]) == (
            "ended",
            "insufficient_funds",
            RATE,
        )
        assert (balance(fan.id), balance(creator.id)) == (0, RATE)
    assert_books_balance()


def test_hanging_up_while_agora_hangs_is_fast_and_exact(
    make_user: MakeUser, set_env: SetEnv, clock: Clock
) -> None:
    with servers.hanging() as agora_api:
        set_env(AGORA_CUSTOMER_ID="customer", AGORA_CUSTOMER_SECRET="secret", AGORA_REST_BASE=agora_api.url)
        fan, creator = make_user(balance=100), make_user(role="creator")
        start = clock.now
        call_id = connect(fan, creator, clock, start)
        clock.now = start + timedelta(seconds=70)  # two minutes started: both are settled at hang-up
        t = call("calls/[call_id]/end.py", "POST", f"/api/calls/{call_id}/end", headers=fan.headers)
        assert t.status == 200, t.response.text
        assert (t.json()["totalCost"], t.json()["durationMinutes"], t.json()["endReason"]) == (
            2 * RATE,
            2,
            "hangup",
        )
        assert agora_api.accepted == 0  # a hang-up kicks nobody
    record(f"agora hanging: hang-up settling 2 minutes {t.ms()}")
    assert t.total_s < 1.0
    assert (balance(fan.id), balance(creator.id)) == (100 - 2 * RATE, 2 * RATE)
    assert_books_balance()


def test_the_open_breaker_lets_one_trial_through_after_its_cooldown(
    set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half-open: after the cooldown one kick is tried; Agora answering again closes the breaker."""
    ticks = {"now": 0.0}
    breaker = agora.CircuitBreaker(threshold=3, cooldown_s=30.0, clock=lambda: ticks["now"])
    monkeypatch.setattr(agora, "breaker", breaker)
    with servers.hanging() as agora_api:
        set_env(
            AGORA_CUSTOMER_ID="customer",
            AGORA_CUSTOMER_SECRET="secret",
            AGORA_REST_BASE=agora_api.url,
            AGORA_TIMEOUT_S="0.3",
        )
        assert [agora.kick_from_channel("call-x", 7) for _ in range(4)] == [False] * 4
        assert agora_api.accepted == 3 and breaker.is_open
    ticks["now"] = 31.0
    with servers.answering(200, {"status": "success", "id": 1}) as agora_back:
        set_env(AGORA_REST_BASE=agora_back.url)
        assert agora.kick_from_channel("call-x", 7) is True
        assert len(agora_back.seen) == 1 and not breaker.is_open
        body = json.loads(agora_back.seen[0].body)
        assert (body["cname"], body["uid"], body["privileges"]) == ("call-x", 7, ["join_channel"])

"""Per-minute billing: each minute charged once, at its start, while both sides are present; the sweep as backstop."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from lib import calls, db, realtime
from lib.calls import billing
from localdev import qstash_server
from tests.calls.helpers import (
    CRON_HEADERS,
    as_user,
    balance,
    beat,
    both_beat,
    call_row,
    client,
    connect,
    deliver,
    in_tx,
    job_body,
    minute_charges,
    outbox,
    real_now,
    seconds,
    signed_headers,
)
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person

T = datetime.fromisoformat("2031-03-01T12:00:00+00:00")  # an injected clock for tests that move time by hand


def keys(call_id: UUID, *minutes: int) -> list[str]:
    return [f"call:{call_id}:minute:{n}" for n in minutes]


def test_minute_two_is_charged_at_its_start_while_both_are_present(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    assert balance(fan) == 90
    both_beat(fan, creator, call_id, T + seconds(30))
    early = in_tx(calls.bill_call_minute, call_id, 2, T + seconds(59))
    assert early.status == "not_due" and minute_charges(call_id) == keys(call_id, 1)
    result = in_tx(calls.bill_call_minute, call_id, 2, T + seconds(60))
    assert result.status == "billed" and result.lastBilledMinute == 2
    assert balance(fan) == 80 and balance(creator) == 20
    assert [e["payload"] for e in outbox(event="call:minute_billed")][-1] == {
        "callId": str(call_id),
        "minute": 2,
        "fanBalance": 80,
    }
    fan_updates = outbox(realtime.user_channel(fan.id), "balance:update")
    assert fan_updates[-1]["payload"] == {"balance": 80, "delta": -10, "reason": "call"}
    creator_updates = outbox(realtime.user_channel(creator.id), "balance:update")
    assert creator_updates[-1]["payload"] == {"balance": 20, "delta": 10, "reason": "call_earnings"}
    again = in_tx(calls.bill_call_minute, call_id, 2, T + seconds(61))
    assert again.status == "already_billed" and minute_charges(call_id) == keys(call_id, 1, 2)


def test_redelivered_billing_job_charges_once(fan: Person, creator: Person) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(61))
    both_beat(fan, creator, call_id, now - seconds(30))
    both_beat(fan, creator, call_id, now - seconds(5))
    first = deliver(call_id, 2, message_id="msg_minute_2")
    assert first.status_code == 200 and first.json()["status"] == "billed", first.text
    redelivered = deliver(call_id, 2, message_id="msg_minute_2")
    assert redelivered.status_code == 200 and redelivered.json()["status"] == "duplicate_delivery"
    republished = deliver(call_id, 2, message_id="msg_minute_2_again")
    assert republished.json()["status"] == "already_billed"
    assert minute_charges(call_id) == keys(call_id, 1, 2) and balance(fan) == 80


@pytest.mark.parametrize("order", ["job_first", "sweep_first"])
def test_job_and_sweep_for_the_same_minute_charge_once(fan: Person, creator: Person, order: str) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(61))
    both_beat(fan, creator, call_id, now - seconds(30))
    both_beat(fan, creator, call_id, now - seconds(5))
    cron = client("cron/bill-active-calls.py")
    if order == "job_first":
        assert deliver(call_id, 2).json()["status"] == "billed"
        assert cron.get("/api/cron/bill-active-calls", headers=CRON_HEADERS).json()["minutesBilled"] == 0
    else:
        assert cron.post("/api/cron/bill-active-calls", headers=CRON_HEADERS).json()["minutesBilled"] == 1
        assert deliver(call_id, 2).json()["status"] == "already_billed"
    assert minute_charges(call_id) == keys(call_id, 1, 2) and balance(fan) == 80


def test_concurrent_job_and_sweep_charge_once(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    both_beat(fan, creator, call_id, T + seconds(30))
    both_beat(fan, creator, call_id, T + seconds(55))
    at = T + seconds(61)
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def run(work: str) -> None:
        try:
            barrier.wait()
            if work == "job":
                in_tx(calls.bill_call_minute, call_id, 2, at)
            else:
                in_tx(calls.bill_due_calls, at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in ("job", "sweep")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors
    assert minute_charges(call_id) == keys(call_id, 1, 2) and balance(fan) == 80


def test_early_job_for_a_minute_not_yet_started_charges_nothing(fan: Person, creator: Person) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(30))
    answer = deliver(call_id, 2)
    assert answer.status_code == 200 and answer.json()["status"] == "not_due"
    assert deliver(call_id, 7).json()["status"] == "not_due"
    assert minute_charges(call_id) == keys(call_id, 1) and balance(fan) == 90


@pytest.mark.parametrize(
    "forgery",
    ["wrong_key", "retargeted_path", "retargeted_host", "tampered_body", "missing"],
)
def test_forged_or_retargeted_signature_charges_nothing(fan: Person, creator: Person, forgery: str) -> None:
    now = real_now()
    call_id = connect(fan, creator, now - seconds(61))
    both_beat(fan, creator, call_id, now - seconds(30))
    both_beat(fan, creator, call_id, now - seconds(5))
    body = job_body(call_id, 2)
    headers = {
        "wrong_key": lambda: signed_headers(body, key="sig_someone_elses_key_0123456789abcdef0123"),
        "retargeted_path": lambda: signed_headers(body, url="http://127.0.0.1:3000/api/jobs/other"),
        "retargeted_host": lambda: signed_headers(body, url="https://evil.example/api/jobs/bill-call"),
        "tampered_body": lambda: signed_headers(job_body(call_id, 3)),
        "missing": lambda: {"Content-Type": "application/json", "Upstash-Message-Id": "msg_x"},
    }[forgery]()
    r = client("jobs/bill-call.py").post("/api/jobs/bill-call", content=body, headers=headers)
    assert r.status_code == 401
    assert minute_charges(call_id) == keys(call_id, 1) and balance(fan) == 90


def test_a_job_body_that_names_no_minute_is_refused(fan: Person, creator: Person) -> None:
    body = b'{"callId": "not-a-uuid", "minute": "2"}'
    r = client("jobs/bill-call.py").post("/api/jobs/bill-call", content=body, headers=signed_headers(body))
    assert r.status_code == 422 and r.json()["code"] == "INVALID_JOB_BODY"


def test_sweep_catches_up_every_minute_lost_jobs_missed(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    for t in (30, 70, 110, 150):  # heartbeats keep both present but never charge: no job ran
        both_beat(fan, creator, call_id, T + seconds(t))
    result = in_tx(calls.bill_due_calls, T + seconds(190))
    assert result.minutesBilled == 3 and result.callsChecked == 1
    assert minute_charges(call_id) == keys(call_id, 1, 2, 3, 4) and balance(fan) == 60
    assert [e["payload"]["minute"] for e in outbox(event="call:minute_billed")] == [1, 2, 3, 4]
    assert outbox(realtime.user_channel(fan.id), "balance:update")[-1]["payload"]["delta"] == -30
    assert call_row(call_id).state == "active"


def test_fan_who_cannot_pay_the_next_minute_ends_with_insufficient_funds(
    make_user: MakeUser, creator: Person
) -> None:
    fan = make_user(balance=25)
    call_id = connect(fan, creator, T)
    both_beat(fan, creator, call_id, T + seconds(30))
    assert in_tx(calls.bill_call_minute, call_id, 2, T + seconds(60)).status == "billed"
    for t in (55, 90, 115):
        both_beat(fan, creator, call_id, T + seconds(t))
    result = in_tx(calls.bill_call_minute, call_id, 3, T + seconds(120))
    assert result.status == "ended" and result.state == "ended"
    row = call_row(call_id)
    assert row.end_reason == "insufficient_funds" and row.ended_at == T + seconds(120)
    assert row.total_cost == 20 and row.last_billed_minute == 2 and balance(fan) == 5
    channel = realtime.call_channel(row.channel)
    [short] = outbox(channel, "call:insufficient_funds")
    assert short["payload"] == {
        "callId": str(call_id),
        "minuteBilled": 2,
        "fanBalance": 5,
        "tokensNeeded": 10,
    }
    assert [e["channel"] for e in outbox(event="call:ended")].count(channel) == 1
    assert len(outbox(event="call:ended")) == 3
    ended = in_tx(calls.end, as_user(fan), call_id, T + seconds(130))
    assert ended.endReason == "insufficient_funds" and ended.totalCost == 20 and ended.durationSeconds == 120


@pytest.mark.parametrize("job_ran", [True, False])
def test_heartbeat_timeout_bills_only_to_the_last_presence(
    fan: Person, creator: Person, job_ran: bool
) -> None:
    call_id = connect(fan, creator, T)
    both_beat(fan, creator, call_id, T + seconds(30))  # the fan's last sign of life: present until T+75
    beat(creator, call_id, T + seconds(55))
    if job_ran:
        assert in_tx(calls.bill_call_minute, call_id, 2, T + seconds(60)).status == "billed"
    assert beat(creator, call_id, T + seconds(70)) == "active"
    # Nobody looks again until long after: minute 2 started with both present and is charged (by its job, or
    # by the sweep catching up); minutes 3 and 4 started with the fan gone and are never charged.
    result = in_tx(calls.bill_due_calls, T + seconds(200))
    assert result.endedHeartbeatTimeout == 1 and result.minutesBilled == (0 if job_ran else 1)
    row = call_row(call_id)
    assert row.state == "ended" and row.end_reason == "heartbeat_timeout"
    assert row.ended_at == T + seconds(75) and row.total_cost == 20 and balance(fan) == 80
    assert minute_charges(call_id) == keys(call_id, 1, 2)
    # The fan coming back finds the call over, not revived.
    assert beat(fan, call_id, T + seconds(210)) == "ended"


def test_the_other_sides_heartbeat_ends_a_call_whose_side_timed_out(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    both_beat(fan, creator, call_id, T + seconds(20))
    assert beat(creator, call_id, T + seconds(64)) == "active"  # the fan is present until T+65
    assert beat(creator, call_id, T + seconds(66)) == "ended"
    row = call_row(call_id)
    assert row.end_reason == "heartbeat_timeout" and row.ended_at == T + seconds(65)
    assert row.total_cost == 20  # minute 2 started at T+60 with both present: settled on ending


def test_a_side_silent_at_the_minute_start_ends_the_call_without_charging_it(
    fan: Person, creator: Person
) -> None:
    call_id = connect(fan, creator, T)
    beat(creator, call_id, T + seconds(30))  # the fan never heartbeats: present until T+40 (asked at T-5)
    result = in_tx(calls.bill_call_minute, call_id, 2, T + seconds(60))
    assert result.status == "ended"
    row = call_row(call_id)
    assert row.end_reason == "heartbeat_timeout" and row.ended_at == T + seconds(40)
    assert minute_charges(call_id) == keys(call_id, 1) and balance(fan) == 90


def test_end_charges_the_started_minute_the_job_has_not_reached(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    both_beat(fan, creator, call_id, T + seconds(30))
    summary = in_tx(calls.end, as_user(creator), call_id, T + seconds(61))
    assert summary.durationSeconds == 61 and summary.durationMinutes == 2 and summary.totalCost == 20
    assert summary.endReason == "hangup" and summary.endedBy == creator.id
    assert in_tx(calls.bill_call_minute, call_id, 3, T + seconds(120)).status == "inactive"
    assert minute_charges(call_id) == keys(call_id, 1, 2)


def test_end_within_the_first_minute_costs_exactly_one_minute(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    summary = in_tx(calls.end, as_user(fan), call_id, T + seconds(5))
    assert summary.totalCost == 10 and summary.durationMinutes == 1 and summary.durationSeconds == 5


def test_each_billed_minute_schedules_the_next_one_on_qstash(
    fan: Person, creator: Person, set_env: SetEnv
) -> None:
    with qstash_server.running(
        token=TEST_ENV["QSTASH_TOKEN"],
        current_signing_key=TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=TEST_ENV["QSTASH_NEXT_SIGNING_KEY"],
    ) as local:
        set_env(QSTASH_URL=local.url)
        call_id = connect(fan, creator, T)
        both_beat(fan, creator, call_id, T + seconds(30))
        in_tx(calls.bill_call_minute, call_id, 2, T + seconds(60.4))
        in_tx(calls.bill_call_minute, call_id, 2, T + seconds(61))  # already billed: schedules nothing
        messages = {m["messageId"]: m for m in local.server.messages.values() for m in [m.to_local()]}
        dedup = {key.removeprefix("id:"): messages[mid] for key, mid in local.server.dedup.items()}
    assert sorted(dedup) == [f"call:{call_id}:minute:2", f"call:{call_id}:minute:3"]
    for minute, message in ((2, dedup[f"call:{call_id}:minute:2"]), (3, dedup[f"call:{call_id}:minute:3"])):
        assert message["url"] == TEST_ENV["PUBLIC_BASE_URL"] + "/api/jobs/bill-call"
        assert json.loads(message["body"]) == {"callId": str(call_id), "minute": minute}
        # Published one minute ahead, rounded up so it never arrives before the minute starts.
        assert 59_000 <= message["notBefore"] - message["createdAt"] <= 61_000


def seed_due_calls(n: int, *, first: int = 1) -> None:
    """`n` active calls between fresh users, minute 1 paid, both sides present, minute 2 due at T+60."""
    with db.transaction(statement_timeout_ms=120_000) as conn:
        conn.execute(
            """WITH ids AS (
                   SELECT i, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid AS fan,
                             ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid AS creator
                   FROM generate_series(%(first)s, %(first)s + %(n)s - 1) AS i
               )
               INSERT INTO users (id, username, token_balance, is_creator, role, video_price)
               SELECT fan, 'bulk_fan_' || i, 100, false, 'fan', NULL FROM ids
               UNION ALL
               SELECT creator, 'bulk_creator_' || i, 0, true, 'creator', 10 FROM ids""",
            {"n": n, "first": first},
        )
        conn.execute(
            """INSERT INTO call_sessions (fan_id, creator_id, initiated_by, call_type, state, channel,
                                          rate_per_minute, created_at, ring_expires_at, connected_at,
                                          last_billed_minute, total_cost, fan_last_seen_at, creator_last_seen_at)
               SELECT f, c, f, 'video', 'active', 'call-bulk-' || i, 10, %(t)s, %(t)s, %(t)s, 1, 10, %(seen)s, %(seen)s
               FROM generate_series(%(first)s, %(first)s + %(n)s - 1) AS i,
                    LATERAL (SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid AS f,
                                    ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid AS c) AS ids""",
            {"n": n, "first": first, "t": T, "seen": T + seconds(30)},
        )


class CountingConn:
    """A connection that counts the statements sent through it (the sweep must not grow them with N)."""

    def __init__(self, conn: db.Conn) -> None:
        self.conn = conn
        self.statements = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def sweep_statements(n: int, first: int) -> int:
    seed_due_calls(n, first=first)
    with db.transaction() as conn:
        counting = CountingConn(conn)
        result = calls.bill_due_calls(counting, T + seconds(61))  # type: ignore[arg-type]
    assert result.minutesBilled == n
    return counting.statements


def test_sweep_is_set_based_its_statements_do_not_grow_with_the_calls(clean: None) -> None:
    assert sweep_statements(3, first=1) == sweep_statements(300, first=100)


def test_sweep_bills_ten_thousand_due_calls_once_each(clean: None) -> None:
    # Correctness at the benchmark's scale; its speed is a figure scripts/bench prints, never a timed test.
    n = 10_000
    seed_due_calls(n)
    with db.transaction() as conn:
        result = calls.bill_due_calls(conn, T + seconds(61))
    assert result.callsChecked == n and result.minutesBilled == n
    with db.transaction() as conn:
        again = calls.bill_due_calls(conn, T + seconds(61))
    assert again.minutesBilled == 0


def test_billing_clock_reads_minutes_from_connection(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, T)
    row = call_row(call_id)
    assert billing.minute_starts_at(row, 3) == T + seconds(120)
    assert billing.current_minute(row, T + seconds(119)) == 2
    assert billing.paid_until(row) == T + seconds(60)

"""Booked calls: accepted ones ring at their time (the signed QStash job), rescheduled ones at the new time only,
cancelled ones never; a side busy at the time is retried; the cleanup sweep rings a lost one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from lib import calls, db, realtime
from lib.calls import scheduling, sessions
from lib.calls.session_models import RescheduleIn, SessionRequestIn
from tests.calls.helpers import as_user, balance, call_row, connect, in_tx, outbox, real_now
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.sessions.helpers import deliver_ring, local_slot, next_minute


def book(fan: Person, creator: Person, at: datetime, now: datetime) -> UUID:
    day, hhmm = local_slot(at)
    body = SessionRequestIn(
        creatorId=creator.id, serviceType="video", price=10, scheduled_date=day, scheduled_time=hhmm
    )
    return in_tx(sessions.request, as_user(fan), body, now).requestId


def booking(request_id: UUID) -> scheduling.Booking:
    with db.transaction() as conn:
        found = scheduling.lock(conn, request_id)
    assert found is not None
    return found


def published_rings(monkeypatch: Any) -> list[tuple[dict[str, Any], int, str]]:
    """Capture the ring jobs lib would publish to QStash after each commit."""
    sent: list[tuple[dict[str, Any], int, str]] = []
    monkeypatch.setattr(scheduling, "_publish", lambda jobs: sent.extend(jobs))
    return sent


def test_an_accepted_booking_publishes_its_ring_for_its_time_and_rings_then(
    fan: Person, creator: Person, monkeypatch: Any
) -> None:
    sent = published_rings(monkeypatch)
    now = real_now()
    at = next_minute(now, 30)
    rid = book(fan, creator, at, now)
    assert sent == []  # nothing rings before the creator accepts
    in_tx(sessions.accept, as_user(creator), rid, now)
    ((body, delay, dedup),) = sent
    assert body == {"requestId": str(rid), "version": 1} and dedup == f"ring:{rid}:v1"
    assert abs(delay - (at - now).total_seconds()) <= 1

    early = in_tx(scheduling.ring_due, rid, 1, at - timedelta(seconds=5))  # a clock jump: waits again
    assert early.status == "not_due" and booking(rid).status == "accepted"
    rung = in_tx(scheduling.ring_due, rid, 1, at)
    assert rung.status == "rung" and rung.callId is not None
    call = call_row(rung.callId)
    assert call.state == "ringing" and call.caller_id == fan.id and call.rate_per_minute == 10
    ring = outbox(realtime.user_channel(creator.id), "call:request")[-1]["payload"]
    assert ring["callId"] == str(rung.callId)
    for who in (fan, creator):
        due = outbox(realtime.user_channel(who.id), "session:due")
        assert due and due[-1]["payload"]["callId"] == str(rung.callId)
    again = in_tx(scheduling.ring_due, rid, 1, at + timedelta(seconds=1))
    assert again.status == "stale"  # a redelivery rings nothing twice

    # From here it is the ordinary call: the creator answers through /sessions and minute 1 is charged.
    answered = in_tx(sessions.accept, as_user(creator), rid, at + timedelta(seconds=3))
    assert answered.call is not None and answered.request.status == "accepted"
    assert balance(fan) == 90 and call_row(rung.callId).state == "active"
    done = in_tx(sessions.cancel, as_user(fan), rid, None, at + timedelta(seconds=30))
    assert done.request.status == "completed" and call_row(rung.callId).end_reason == "hangup"


def test_a_rescheduled_booking_rings_at_the_new_time_only(
    fan: Person, creator: Person, monkeypatch: Any
) -> None:
    sent = published_rings(monkeypatch)
    now = real_now()
    old, new = next_minute(now, 30), next_minute(now, 90)
    rid = book(fan, creator, old, now)
    in_tx(sessions.accept, as_user(creator), rid, now)
    day, hhmm = local_slot(new)
    moved = in_tx(
        sessions.reschedule,
        as_user(fan),
        rid,
        RescheduleIn(new_date=day, new_time=hhmm, message="later"),
        now,
    )
    assert moved.request.status == "accepted" and moved.request.scheduled_time == hhmm
    assert [(b["version"], d) for b, _, d in sent] == [(1, f"ring:{rid}:v1"), (2, f"ring:{rid}:v2")]
    assert abs(sent[1][1] - (new - now).total_seconds()) <= 1

    assert in_tx(scheduling.ring_due, rid, 1, old).status == "stale"  # the old message, at the old time
    assert booking(rid).status == "accepted" and booking(rid).call_id is None
    assert in_tx(scheduling.ring_due, rid, 2, new).status == "rung"
    for who in (fan, creator):
        assert [e["event"] for e in outbox(realtime.user_channel(who.id)) if e["event"] == "session:updated"]


def test_a_cancelled_booking_never_rings(fan: Person, creator: Person, monkeypatch: Any) -> None:
    published_rings(monkeypatch)
    now = real_now()
    at = next_minute(now, 30)
    rid = book(fan, creator, at, now)
    in_tx(sessions.accept, as_user(creator), rid, now)
    in_tx(sessions.cancel, as_user(fan), rid, "something came up", now)
    assert in_tx(scheduling.ring_due, rid, 1, at).status == "stale"
    assert in_tx(scheduling.ring_due, rid, 2, at).status == "stale"
    assert in_tx(calls.ring_scheduled_calls, at + timedelta(minutes=1)).rung == 0


def test_a_side_busy_at_the_time_is_retried_then_expires(
    make_user: MakeUser, fan: Person, creator: Person, monkeypatch: Any
) -> None:
    sent = published_rings(monkeypatch)
    now = real_now()
    at = next_minute(now, 30)
    rid = book(fan, creator, at, now)
    in_tx(sessions.accept, as_user(creator), rid, now)
    connect(make_user(balance=100), creator, at - timedelta(seconds=10))  # the creator is in another call
    busy = in_tx(scheduling.ring_due, rid, 1, at)
    assert busy.status == "busy" and booking(rid).status == "accepted"
    retry = sent[-1]
    assert retry[0] == {"requestId": str(rid), "version": 1} and retry[1] == scheduling.RETRY_S
    late = in_tx(scheduling.ring_due, rid, 1, at + scheduling.RING_GRACE)
    assert late.status == "expired" and booking(rid).reason == "busy"


def test_the_cleanup_sweep_rings_a_lost_message_and_expires_unanswered_bookings(
    make_user: MakeUser, creator: Person, monkeypatch: Any
) -> None:
    published_rings(monkeypatch)
    fan_a, fan_b = make_user(balance=100), make_user(balance=100)
    other = make_user(role="creator")
    now = real_now()
    at = next_minute(now, 30)
    accepted = book(fan_a, creator, at, now)
    in_tx(sessions.accept, as_user(creator), accepted, now)
    unanswered = book(fan_b, other, at, now)
    assert in_tx(calls.ring_scheduled_calls, at - timedelta(seconds=1)).model_dump() == {
        "rung": 0,
        "busy": 0,
        "expired": 0,
    }
    swept = in_tx(calls.ring_scheduled_calls, at + timedelta(seconds=20))
    assert swept.model_dump() == {"rung": 1, "busy": 0, "expired": 1}
    assert booking(accepted).status == "rung" and booking(unanswered).status == "expired"


def test_the_ring_job_route_checks_the_signature_and_claims_each_delivery_once(
    fan: Person, creator: Person, monkeypatch: Any
) -> None:
    published_rings(monkeypatch)
    now = real_now()
    rid = book(fan, creator, next_minute(now, 30), now)
    in_tx(sessions.accept, as_user(creator), rid, now)
    with db.transaction() as conn:  # its time has come
        conn.execute(
            "UPDATE call_requests SET scheduled_at = now() - interval '1 second' WHERE id = %(id)s",
            {"id": rid},
        )
    first = deliver_ring(rid, 1, message_id="msg_ring_1")
    assert first.status_code == 200 and first.json()["status"] == "rung"
    assert deliver_ring(rid, 1, message_id="msg_ring_1").json()["status"] == "duplicate_delivery"
    assert deliver_ring(rid, 1).json()["status"] == "stale"
    from tests.calls.helpers import client

    unsigned = client("jobs/ring-scheduled-call.py").post(
        scheduling.RING_PATH, json={"requestId": str(rid), "version": 1}
    )
    assert unsigned.status_code == 401


def test_a_retried_booking_is_the_same_booking(fan: Person, creator: Person) -> None:
    now = real_now()
    at = next_minute(now, 30)
    assert book(fan, creator, at, now) == book(fan, creator, at, now)


def test_the_cleanup_cron_runs_the_scheduled_call_step(
    fan: Person, creator: Person, monkeypatch: Any
) -> None:
    from lib import cleanup

    published_rings(monkeypatch)
    now = real_now()
    at = next_minute(now, 30)
    rid = book(fan, creator, at, now)
    in_tx(sessions.accept, as_user(creator), rid, now)
    report = cleanup.run(at + timedelta(seconds=5))
    step = report.steps["scheduledCalls"]
    assert step.ok and step.result == {"rung": 1, "busy": 0, "expired": 0}
    assert booking(rid).status == "rung"

"""Calls: per-minute billing, one code path for the minute job, the cron sweep, heartbeats and hanging up.

Time model (every function takes `now`, so tests bill minutes without sleeping):
- Minute n of a call starts at `connected_at + (n - 1) * MINUTE_S`; minute 1 is charged when the call is
  accepted, minute n >= 2 at its start by a QStash job (`/jobs/bill-call`) published one minute ahead.
- A side is present until it has been silent (no heartbeat) for CALL_HEARTBEAT_TIMEOUT_S, so both are present
  until `present_until = least(fan_last_seen_at, creator_last_seen_at) + timeout`.
- A started minute is charged if both sides were present at its start: minutes starting before
  `present_until` and not after `now` ("every started minute", the last partial one included).
- A call whose side has timed out ends at `present_until`, however late anyone notices; no minute starting
  after that is ever charged. A fan who cannot pay the next minute ends the call (insufficient_funds) at the
  start of that minute, and is removed from the Agora channel after the commit.
- Every charge is `ledger.transfer_many` keyed `call:{id}:minute:{n}`, under the call's row lock: a
  redelivered job, the sweep and a retry can never charge a minute twice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib import agora, ledger
from lib.calls import queries
from lib.calls.events import Announcements, minute_dedup_id
from lib.calls.models import Billing, Call
from lib.config import get_settings
from lib.db import Conn
from lib.errors import Unprocessable

if TYPE_CHECKING:
    from lib.jobs import JobMessage

MINUTE_S = 60  # the billing unit; a module constant so an end-to-end test can run minutes of a few seconds
LEDGER_KIND = "call"


def minute() -> timedelta:
    """One billing minute."""
    return timedelta(seconds=MINUTE_S)


def heartbeat_timeout() -> timedelta:
    """How long a side may be silent before it counts as gone."""
    return timedelta(seconds=get_settings().call_heartbeat_timeout_s)


def minute_starts_at(call: Call, n: int) -> datetime:
    """When minute `n` (1-based) of a connected call starts."""
    assert call.connected_at is not None
    return call.connected_at + (n - 1) * minute()


def paid_until(call: Call) -> datetime:
    """The end of the time already paid for."""
    return minute_starts_at(call, call.last_billed_minute + 1)


def join_expiry(call: Call) -> int:
    """Unix time a participant's media token expires: the end of the paid time plus a short grace."""
    return int(paid_until(call).timestamp()) + agora.GRACE_S


def present_until(call: Call) -> datetime:
    """The last moment both sides count as present (each until it has been silent for the timeout)."""
    seen = [t for t in (call.fan_last_seen_at, call.creator_last_seen_at) if t is not None]
    assert call.connected_at is not None and len(seen) == 2, "an active call has both heartbeats"
    return max(min(seen) + heartbeat_timeout(), call.connected_at)


def current_minute(call: Call, now: datetime) -> int:
    """The minute running at `now` (1 at connection)."""
    assert call.connected_at is not None
    return max(0, math.floor((now - call.connected_at) / minute())) + 1


def billable_through(call: Call, now: datetime) -> int:
    """The last minute that has started by `now` while both sides were present."""
    assert call.connected_at is not None
    started_while_present = math.ceil((present_until(call) - call.connected_at) / minute())
    return max(0, min(current_minute(call, now), started_while_present))


def minute_request(call: Call, n: int) -> ledger.TransferRequest:
    """The ledger transfer that charges minute `n`."""
    return ledger.TransferRequest(
        from_user=call.fan_id,
        to_user=call.creator_id,
        amount=call.rate_per_minute,
        kind=LEDGER_KIND,
        reference_type="call",
        reference_id=str(call.id),
        idempotency_key=minute_dedup_id(call.id, n),
        metadata={"minute": n, "callType": call.call_type},
    )


def billing_of(call: Call, now: datetime) -> Billing:
    """Where the call's billing stands at `now` (the heartbeat's answer)."""
    if call.connected_at is None:
        return Billing(
            elapsedSeconds=0,
            currentMinute=0,
            lastBilledMinute=0,
            tokensPerMinute=call.rate_per_minute,
            nextBillingIn=None,
            totalCost=call.total_cost,
        )
    until = call.ended_at or now
    next_in = None
    if call.state == "active":
        next_in = max(0, math.ceil((paid_until(call) - now).total_seconds()))
    return Billing(
        elapsedSeconds=max(0, int((until - call.connected_at).total_seconds())),
        currentMinute=current_minute(call, until),
        lastBilledMinute=call.last_billed_minute,
        tokensPerMinute=call.rate_per_minute,
        nextBillingIn=next_in,
        totalCost=call.total_cost,
    )


@dataclass
class Advanced:
    """What bringing calls up to date did."""

    calls: dict[UUID, Call] = field(default_factory=dict)  # every call looked at, as it is now
    minutes_billed: int = 0
    ended_insufficient: list[UUID] = field(default_factory=list)
    ended_timeout: list[UUID] = field(default_factory=list)


@dataclass
class _Plan:
    call: Call
    first: int  # first minute requested
    count: int  # minutes requested
    billed: int = 0
    cost: int = 0
    charged: int = 0  # tokens taken from the fan by this run
    short_balance: int | None = None
    fan_balance: int | None = None
    creator_balance: int | None = None
    earned: int = 0


def advance(
    conn: Conn,
    calls: list[Call],
    now: datetime,
    ann: Announcements,
    *,
    through: dict[UUID, int] | None = None,
) -> Advanced:
    """Charge every billable minute of these locked active calls and end those that must end; set-based.

    `through` caps the minutes charged per call (a job for minute n charges up to n). A constant number of
    statements whatever the number of calls: the ledger's `transfer_many`, one UPDATE, one outbox INSERT.
    """
    plans: list[_Plan] = []
    requests: list[ledger.TransferRequest] = []
    for call in calls:
        last = billable_through(call, now)
        if through is not None and call.id in through:
            last = min(last, through[call.id])
        first = call.last_billed_minute + 1
        count = max(0, last - first + 1)
        plans.append(_Plan(call, first, count, call.last_billed_minute, call.total_cost))
        requests.extend(minute_request(call, n) for n in range(first, first + count))
    outcomes = ledger.transfer_many(conn, requests) if requests else []

    result = Advanced()
    changes: dict[UUID, dict[str, Any]] = {}
    at = 0
    for plan in plans:
        call = plan.call
        for n, outcome in zip(
            range(plan.first, plan.first + plan.count), outcomes[at : at + plan.count], strict=True
        ):
            if plan.short_balance is not None:
                continue  # the ledger refuses the rest of this payer's minutes too
            if outcome.status == "insufficient":
                plan.short_balance = int(outcome.current_balance or 0)
                continue
            plan.billed, plan.cost = n, plan.cost + call.rate_per_minute
            if outcome.transfer is not None:  # None ("duplicate"): charged before under the same key
                plan.charged += call.rate_per_minute
                plan.fan_balance = outcome.transfer.from_balance
                plan.creator_balance = outcome.transfer.to_balance
                plan.earned += outcome.transfer.creator_cut
                ann.minute_billed(call, n, outcome.transfer.from_balance)
                result.minutes_billed += 1
        at += plan.count
        change: dict[str, Any] = {}
        if plan.billed != call.last_billed_minute:
            change = {"last_billed_minute": plan.billed, "total_cost": plan.cost}
        if plan.short_balance is not None:
            change |= {"state": "ended", "end_reason": "insufficient_funds"}
            change["ended_at"] = minute_starts_at(call, plan.billed + 1)
        elif (until := present_until(call)) <= now:
            change |= {"state": "ended", "ended_at": until, "end_reason": "heartbeat_timeout"}
        if change:
            changes[call.id] = change
        result.calls[call.id] = call.model_copy(update=change)
    _write(conn, changes)

    for plan in plans:
        call = result.calls[plan.call.id]
        if plan.fan_balance is not None:
            ann.balance(call.fan_id, plan.fan_balance, -plan.charged, "call")
        if plan.creator_balance is not None:
            ann.balance(call.creator_id, plan.creator_balance, plan.earned, "call_earnings")
        if call.end_reason == "insufficient_funds":
            ann.insufficient_funds(call, int(plan.short_balance or 0))
            result.ended_insufficient.append(call.id)
        elif call.end_reason == "heartbeat_timeout":
            result.ended_timeout.append(call.id)
        if call.state == "ended":
            ann.state(call)
        elif call.last_billed_minute > plan.call.last_billed_minute:
            nxt = call.last_billed_minute + 1
            ann.schedule_minute(call, nxt, minute_starts_at(call, nxt), now)
    if result.ended_insufficient:
        fans = {result.calls[i].fan_id: result.calls[i].channel for i in result.ended_insufficient}
        for user_id, uid in _agora_uids(conn, list(fans)).items():
            ann.kick(fans[user_id], uid)
    return result


def _write(conn: Conn, changes: dict[UUID, dict[str, Any]]) -> None:
    """Apply billing progress and endings to the (locked) calls in one statement."""
    if not changes:
        return
    # One JSON parameter: psycopg adapts a 10,000-element array per column far slower than one string.
    rows = [
        {
            "id": str(call_id),
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in change.items()},
        }
        for call_id, change in changes.items()
    ]
    conn.execute(
        """UPDATE call_sessions c
           SET last_billed_minute = coalesce(u.last_billed_minute, c.last_billed_minute),
               total_cost = coalesce(u.total_cost, c.total_cost),
               state = coalesce(u.state, c.state),
               ended_at = coalesce(u.ended_at, c.ended_at),
               end_reason = coalesce(u.end_reason, c.end_reason)
           FROM jsonb_to_recordset(%(rows)s::jsonb)
                AS u(id uuid, last_billed_minute int, total_cost bigint, state text, ended_at timestamptz,
                     end_reason text)
           WHERE c.id = u.id""",
        {"rows": json.dumps(rows)},
    )


def _agora_uids(conn: Conn, user_ids: list[UUID]) -> dict[UUID, int]:
    rows = conn.execute(
        "SELECT id, agora_uid FROM users WHERE id = ANY(%(ids)s)", {"ids": user_ids}
    ).fetchall()
    return {r["id"]: int(r["agora_uid"]) for r in rows}


# --- entry points ---------------------------------------------------------------------------------------------


class MinuteResult(BaseModel):
    """POST /jobs/bill-call's answer (QStash only needs the 2xx; this is for logs and tests)."""

    callId: UUID
    minute: int
    status: str  # billed | already_billed | not_due | inactive | ended | not_found | duplicate_delivery
    state: str | None = None
    lastBilledMinute: int | None = None


def bill_call_minute(conn: Conn, call_id: UUID, n: int, now: datetime) -> MinuteResult:
    """Charge minute `n` of a call (the QStash job); nothing if it is charged, not started, or the call is over."""
    call = queries.lock(conn, call_id)
    if call is None:
        return MinuteResult(callId=call_id, minute=n, status="not_found")
    if call.state != "active":
        return MinuteResult(callId=call_id, minute=n, status="inactive", state=call.state)
    if n <= call.last_billed_minute:
        return _result(call, n, "already_billed")
    ann = Announcements()
    starts = minute_starts_at(call, n)
    if starts > now and present_until(call) > now:
        # Early (only a clock jump can do this): try again at the minute's start; the sweep is the backstop.
        ann.schedule_minute(call, n, starts, now, retry=True)
        ann.commit_with(conn)
        return _result(call, n, "not_due")
    done = advance(conn, [call], now, ann, through={call.id: n})
    ann.commit_with(conn)
    after = done.calls[call.id]
    status = "ended" if after.state != "active" else ("billed" if done.minutes_billed else "already_billed")
    return _result(after, n, status)


class BillCallJob(BaseModel):
    """The body of a /jobs/bill-call message."""

    model_config = ConfigDict(strict=True)

    callId: UUID = Field(strict=False)
    minute: int = Field(ge=1)


def run_bill_call_job(conn: Conn, job: JobMessage, now: datetime) -> MinuteResult:
    """A verified QStash delivery: claim its message id once, then charge the minute it names."""
    from lib import jobs  # the QStash SDK loads only where jobs run

    try:
        body = BillCallJob.model_validate(job.body)
    except ValidationError as exc:
        raise Unprocessable("Expected {callId, minute}", code="INVALID_JOB_BODY") from exc
    if not jobs.claim_delivery(conn, job.message_id):
        return MinuteResult(callId=body.callId, minute=body.minute, status="duplicate_delivery")
    return bill_call_minute(conn, body.callId, body.minute, now)


def _result(call: Call, n: int, status: str) -> MinuteResult:
    return MinuteResult(
        callId=call.id, minute=n, status=status, state=call.state, lastBilledMinute=call.last_billed_minute
    )


class SweepResult(BaseModel):
    """What one sweep did."""

    callsChecked: int
    minutesBilled: int
    endedInsufficientFunds: int
    endedHeartbeatTimeout: int


_SWEEP = f"""
    SELECT {queries.COLUMNS} FROM call_sessions
    WHERE state = 'active' AND ({{condition}})
    ORDER BY connected_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
"""  # noqa: S608
_MINUTE_DUE = "connected_at + make_interval(secs => last_billed_minute * %(minute_s)s) <= %(now)s"
_SIDE_SILENT = (
    "least(fan_last_seen_at, creator_last_seen_at) + make_interval(secs => %(timeout_s)s) <= %(now)s"
)


def _sweep(conn: Conn, now: datetime, *, condition: str, limit: int) -> SweepResult:
    # Calls a job or a request holds right now are skipped: whoever holds them brings them up to date.
    rows = conn.execute(
        _SWEEP.format(condition=condition),
        {
            "minute_s": MINUTE_S,
            "now": now,
            "timeout_s": get_settings().call_heartbeat_timeout_s,
            "limit": limit,
        },
    ).fetchall()
    # Rows straight from our own table: typed by psycopg already, so skip re-validating 10,000 of them.
    calls = [Call.model_construct(**r) for r in rows]
    ann = Announcements()
    done = advance(conn, calls, now, ann)
    ann.commit_with(conn)
    return SweepResult(
        callsChecked=len(calls),
        minutesBilled=done.minutes_billed,
        endedInsufficientFunds=len(done.ended_insufficient),
        endedHeartbeatTimeout=len(done.ended_timeout),
    )


def bill_due_calls(conn: Conn, now: datetime, *, limit: int = 20_000) -> SweepResult:
    """The cron sweep: charge every due minute a lost job missed and end calls whose side went silent."""
    return _sweep(conn, now, condition=f"{_MINUTE_DUE} OR {_SIDE_SILENT}", limit=limit)


def end_dead_calls(conn: Conn, now: datetime, *, limit: int = 5_000) -> SweepResult:
    """End active calls whose side has been silent for the heartbeat timeout (billing them up to that moment)."""
    return _sweep(conn, now, condition=_SIDE_SILENT, limit=limit)

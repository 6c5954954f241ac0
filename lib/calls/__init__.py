"""Paid calls: one state machine (`machine`), per-minute billing (`billing`), reads (`listing`), channel access.

Routes call these; the cleanup cron calls `expire_stale_rings`, `end_dead_calls`, `bill_due_calls` and
`ring_scheduled_calls` (booked calls whose ring job was lost). The frontend's `/sessions/*` routes use `sessions`
(over `machine` and `scheduling`, the bookings).
"""

from __future__ import annotations

from datetime import UTC, datetime

from lib.calls.access import agora_token, authorize_pusher
from lib.calls.billing import (
    MinuteResult,
    SweepResult,
    bill_call_minute,
    bill_due_calls,
    end_dead_calls,
    run_bill_call_job,
)
from lib.calls.listing import history, pending, status
from lib.calls.machine import (
    accept,
    cancel,
    decline,
    end,
    expire_stale_rings,
    heartbeat,
    initiate_call,
    request_call,
)
from lib.calls.scheduling import sweep as ring_scheduled_calls
from lib.calls.sweeps import CronResult, billing_cron

__all__ = [
    "CronResult",
    "MinuteResult",
    "SweepResult",
    "accept",
    "agora_token",
    "authorize_pusher",
    "bill_call_minute",
    "bill_due_calls",
    "billing_cron",
    "cancel",
    "decline",
    "end",
    "end_dead_calls",
    "expire_stale_rings",
    "heartbeat",
    "history",
    "initiate_call",
    "pending",
    "request_call",
    "ring_scheduled_calls",
    "run_bill_call_job",
    "status",
    "utcnow",
]


def utcnow() -> datetime:
    """The clock every call function is given by default (tests pass their own `now`)."""
    return datetime.now(UTC)

"""Calls: the every-minute cron, which runs the sweeps a lost job or an unanswered ring would otherwise wait on."""

from __future__ import annotations

from datetime import datetime

from lib.calls.billing import SweepResult, bill_due_calls
from lib.calls.machine import expire_stale_rings
from lib.db import Conn


class CronResult(SweepResult):
    """GET|POST /cron/bill-active-calls."""

    ringsMissed: int


def billing_cron(conn: Conn, now: datetime) -> CronResult:
    """Rings past 45 s become missed; due minutes are charged; calls with a silent side end."""
    missed = expire_stale_rings(conn, now)
    swept = bill_due_calls(conn, now)
    return CronResult(**swept.model_dump(), ringsMissed=missed)

"""The cleanup cron: stale rings, dead calls and streams, counters, the realtime outbox, and the books.

Each step runs in its own transaction, so one failing step (reported to Sentry) never undoes the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from lib import calls, db, idempotency, jobs, ledger, observability, payouts, realtime, stats, streams

log = logging.getLogger("digis.cleanup")


class StepResult(BaseModel):
    """One step's outcome."""

    ok: bool
    ms: float
    result: Any = None
    error: str | None = None


class CleanupReport(BaseModel):
    """GET|POST /cron/cleanup body."""

    ok: bool
    ranAt: datetime
    steps: dict[str, StepResult]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        out = asdict(value)
        if hasattr(value, "ok"):
            out["ok"] = value.ok
        return out
    return value


def _ledger_step(conn: db.Conn) -> dict[str, Any]:
    report = ledger.reconcile(conn)
    return {
        "ok": report.ok,
        "usersChecked": report.users_checked,
        "balanceDrift": len(report.balance_drift),
        "debtDrift": len(report.debt_drift),
        "chainBreaks": len(report.chain_breaks),
        "conservationDrift": report.conservation_drift,
    }


def steps(now: datetime) -> list[tuple[str, Callable[[db.Conn], Any]]]:
    """The steps, in order; each takes its own transaction's connection."""
    return [
        ("ringsMissed", lambda conn: calls.expire_stale_rings(conn, now)),
        ("deadCalls", lambda conn: calls.end_dead_calls(conn, now)),
        ("scheduledCalls", lambda conn: calls.ring_scheduled_calls(conn, now)),
        ("staleStreams", lambda conn: streams.end_stale_streams(conn, now)),
        ("activeSessions", stats.reconcile_active_sessions),
        ("outboxPurged", realtime.purge),
        ("idempotencyPurged", idempotency.purge_expired),
        ("jobDeliveriesPurged", jobs.purge_deliveries),
        ("ledger", _ledger_step),
    ]


def run(now: datetime | None = None) -> CleanupReport:
    """Run every step; failures are logged and reported, never raised."""
    now = now or datetime.now(UTC)
    results: dict[str, StepResult] = {}
    for name, step in steps(now):
        started = time.perf_counter()
        try:
            with db.transaction(statement_timeout_ms=20_000) as conn:
                value = _plain(step(conn))
            results[name] = StepResult(ok=True, ms=_ms(started), result=value)
        except Exception as exc:
            log.exception("cleanup step %s failed", name)
            observability.capture_message("cleanup step failed", level="error", step=name, error=repr(exc))
            results[name] = StepResult(ok=False, ms=_ms(started), error=type(exc).__name__)
    # Outside any transaction: these call Pusher and Stripe, slow I/O that must not hold row locks.
    for name, call in (
        ("outboxFlushed", lambda: realtime.flush_pending(500)),
        ("payoutIntents", lambda: payouts.run_payout_intents(now)),
        ("payoutTransfersRetried", lambda: payouts.retry_stalled_transfers(now)),
    ):
        started = time.perf_counter()
        try:
            results[name] = StepResult(ok=True, ms=_ms(started), result=_plain(call()))
        except Exception as exc:
            log.exception("cleanup step %s failed", name)
            observability.capture_message("cleanup step failed", level="error", step=name, error=repr(exc))
            results[name] = StepResult(ok=False, ms=_ms(started), error=type(exc).__name__)
    books = results["ledger"].result if "ledger" in results else None
    ok = all(r.ok for r in results.values()) and isinstance(books, dict) and bool(books.get("ok"))
    return CleanupReport(ok=ok, ranAt=now, steps=results)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)

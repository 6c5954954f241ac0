"""`scripts/soak`: the call flow under load, 200 concurrent calls billing for 5 minutes of simulated time.

Every call is placed (`request_call`) and accepted (`accept`, minute 1 charged), then a simulated clock ticks
every 15 s: both sides heart-beat, each minute's job runs when its minute starts (`bill_call_minute`, what the
QStash callback runs; a third of them delivered twice, concurrently; for every 11th call minute 3's is lost),
and once a simulated minute the cron sweep (`bill_due_calls`) races the jobs and charges what was lost. Every operation is its own transaction from the pool, run by a thread pool,
so row locks, the ledger's user locks and SKIP LOCKED are all exercised for real; nothing sleeps for real minutes.
Some fans can afford only three minutes (their calls must end `insufficient_funds` after minute 3), some
creators go silent after two minutes (their calls must end `heartbeat_timeout`, billed only while both were
there); the rest hang up just before minute 6 starts and must have paid exactly 5 minutes.

The books afterwards: `ledger.reconcile` ok (cached balances equal ledger sums, balance chains, conservation),
no (call, minute) charged twice, every call's total equal to its charges, every outcome as planned. Realtime
events go to a soketi of its own and rate limits and presence to its own Upstash gateway; QStash is not run (the
soak drives the minutes itself), so each after-commit publish of a next minute fails fast and is counted.
Exit status 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg

from bench import client, stack

T = TypeVar("T")
RESULTS = stack.ROOT / "bench" / "results"
FAN_PREFIX = "f5000000-0000-4000-8000-"
CREATOR_PREFIX = "c5000000-0000-4000-8000-"


@dataclass(frozen=True)
class SoakPlan:
    """The soak's size and its deliberate trouble."""

    calls: int = 200
    minutes: int = 5  # simulated minutes each normal call lasts
    tick_s: int = 15  # simulated seconds between heartbeats
    workers: int = 16  # threads (and pool connections) doing the work
    rate: int = 10  # tokens per minute
    balance: int = 10_000  # tokens of a normal fan
    poor_every: int = 10  # every n-th fan has 3.5 minutes of tokens
    silent_every: int = 7  # every n-th creator stops heart-beating after 2 minutes
    duplicate_every: int = 3  # every n-th call gets each minute job twice, concurrently
    lost_every: int = 11  # every n-th call's minute-3 job is never delivered: the sweep must charge it
    database: str = "digis_soak"
    max_seconds: float = 900.0  # wall-clock bound for the whole soak


def _id(prefix: str, i: int) -> UUID:
    return UUID(f"{prefix}{i:012x}")


@dataclass
class CallPlan:
    """One call: who, what should happen, and what did."""

    n: int
    fan: UUID
    creator: UUID
    poor: bool
    silent: bool
    duplicate: bool
    lost: bool
    call_id: UUID | None = None
    connected_at: datetime | None = None
    next_minute: int = 2


@dataclass
class Tally:
    """Operation counts, latencies and failures, shared by the worker threads."""

    ops: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, status: str | None = None) -> None:
        """One finished operation."""
        with self.lock:
            self.ops[kind] += 1
            self.latencies.setdefault(kind, []).append(seconds)
            if status:
                self.statuses[f"{kind}:{status}"] += 1

    def fail(self, kind: str, exc: BaseException) -> None:
        """One operation that raised."""
        with self.lock:
            self.ops[f"{kind}:error"] += 1
            if len(self.failures) < 20:
                self.failures.append(f"{kind}: {type(exc).__name__}: {exc}")


class LogCounter(logging.Handler):
    """Counts log records by logger and level (the expected QStash and Redis failures), keeps a few samples."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Count it."""
        key = f"{record.name}:{record.levelname}"
        self.counts[key] += 1
        self.samples.setdefault(key, record.getMessage()[:200])


def seed(database: str, plan: SoakPlan) -> None:
    """A fresh database: fans (ledger-backed balances) and creators, set-based."""
    stack.create_database(database, drop_first=True)
    poor_balance = plan.rate * 7 // 2  # three minutes and a half
    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        conn.execute(
            """INSERT INTO users (id, email, username, display_name, role, is_creator, token_balance)
               SELECT (%(p)s || lpad(to_hex(i), 12, '0'))::uuid, 'soak_fan_' || i || '@soak.test', 'soak_fan_' || i,
                      'Soak fan ' || i, 'fan', false,
                      CASE WHEN mod(i, %(poor)s) = 0 THEN %(low)s ELSE %(bal)s END
               FROM generate_series(1, %(n)s) i""",
            {
                "p": FAN_PREFIX,
                "poor": plan.poor_every,
                "low": poor_balance,
                "bal": plan.balance,
                "n": plan.calls,
            },
        )
        conn.execute(
            """INSERT INTO users (id, email, username, display_name, role, is_creator, video_price, voice_price)
               SELECT (%(p)s || lpad(to_hex(i), 12, '0'))::uuid, 'soak_creator_' || i || '@soak.test',
                      'soak_creator_' || i, 'Soak creator ' || i, 'creator', true, %(rate)s, %(rate)s
               FROM generate_series(1, %(n)s) i""",
            {"p": CREATOR_PREFIX, "rate": plan.rate, "n": plan.calls},
        )
        conn.execute(
            """INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                              reference_id, idempotency_key)
               SELECT gen_random_uuid(), id, 'adjustment', token_balance, token_balance, 'soak', 'seed',
                      'soak-seed:' || id
               FROM users WHERE starts_with(id::text, 'f5000000-')"""
        )


class Soak:
    """The simulated clock and the thread pool driving every call."""

    def __init__(self, plan: SoakPlan, tally: Tally) -> None:
        from lib import db, users

        self.plan, self.tally = plan, tally
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.calls = [
            CallPlan(
                n=i,
                fan=_id(FAN_PREFIX, i),
                creator=_id(CREATOR_PREFIX, i),
                poor=i % plan.poor_every == 0,
                silent=i % plan.silent_every == 0,
                duplicate=i % plan.duplicate_every == 0,
                lost=i % plan.lost_every == 0,
            )
            for i in range(1, plan.calls + 1)
        ]
        self.users: dict[UUID, users.User] = {}
        with db.transaction() as conn:
            for c in self.calls:
                for user_id in (c.fan, c.creator):
                    found = users.get(conn, user_id)
                    assert found is not None, f"seeded user {user_id} is missing"
                    self.users[user_id] = found
        self.pool = ThreadPoolExecutor(plan.workers, thread_name_prefix="soak")

    def _op(self, kind: str, fn: Callable[[Any], T]) -> Future[T | None]:
        """Run `fn(conn)` in its own transaction on a worker; count it."""
        from lib import db

        def work() -> T | None:
            t0 = time.perf_counter()
            try:
                with db.transaction() as conn:
                    result = fn(conn)
            except Exception as exc:
                self.tally.fail(kind, exc)
                return None
            status = getattr(result, "status", None) or getattr(result, "state", None)
            if status is None and hasattr(result, "minutesBilled"):  # a sweep: how many minutes it caught
                status = "caught_minutes" if result.minutesBilled else "nothing_due"
            self.tally.record(kind, time.perf_counter() - t0, str(status) if status else None)
            return result

        return self.pool.submit(work)

    def at(self, seconds: float) -> datetime:
        """The simulated clock, `seconds` after the start."""
        return self.start + timedelta(seconds=seconds)

    # One method per operation, so each closure captures exactly its arguments.

    def _request(self, c: CallPlan) -> Future[Any]:
        from lib import calls

        return self._op(
            "request",
            lambda conn: calls.request_call(conn, self.users[c.fan], c.creator, "video", self.at(0)),
        )

    def _accept(self, c: CallPlan, call_id: UUID) -> Future[Any]:
        from lib import calls

        return self._op("accept", lambda conn: calls.accept(conn, self.users[c.creator], call_id, self.at(2)))

    def _heartbeat(self, user: UUID, call_id: UUID, now: datetime) -> Future[Any]:
        from lib import calls

        return self._op("heartbeat", lambda conn: calls.heartbeat(conn, self.users[user], call_id, now))

    def _minute(self, call_id: UUID, n: int, now: datetime) -> Future[Any]:
        from lib import calls

        return self._op("minute_job", lambda conn: calls.bill_call_minute(conn, call_id, n, now))

    def _sweep(self, now: datetime) -> Future[Any]:
        from lib import calls

        return self._op("sweep", lambda conn: calls.bill_due_calls(conn, now))

    def _end(self, user: UUID, call_id: UUID, now: datetime) -> Future[Any]:
        from lib import calls

        return self._op("end", lambda conn: calls.end(conn, self.users[user], call_id, now))

    def place_and_accept(self) -> None:
        """Every fan asks, every creator answers two seconds later (minute 1 charged)."""
        placed = [(c, self._request(c)) for c in self.calls]
        for c, future in placed:
            ringing = future.result()
            c.call_id = ringing.callId if ringing is not None else None
        accepted = [(c, self._accept(c, c.call_id)) for c in self.calls if c.call_id is not None]
        for c, future in accepted:
            if future.result() is not None:
                c.connected_at = self.at(2)

    def tick(self, seconds: float, *, sweep: bool) -> None:
        """Heartbeats, the minute jobs now due, and maybe the sweep, all at once; wait for them."""
        now = self.at(seconds)
        futures: list[Future[Any]] = []
        for c in self.calls:
            if c.call_id is None or c.connected_at is None:
                continue
            futures.append(self._heartbeat(c.fan, c.call_id, now))
            if not (c.silent and seconds - 2 > SILENT_AFTER_S):
                futures.append(self._heartbeat(c.creator, c.call_id, now))
            while c.connected_at + timedelta(minutes=c.next_minute - 1) <= now:
                deliveries = 0 if c.lost and c.next_minute == LOST_MINUTE else 2 if c.duplicate else 1
                for _ in range(deliveries):
                    futures.append(self._minute(c.call_id, c.next_minute, now))
                c.next_minute += 1
        if sweep:
            futures.append(self._sweep(now))  # racing the jobs (it skips the calls they hold)
        for future in futures:
            future.result()
        if sweep:
            self._sweep(now).result()  # and once they are done, as the next cron run would: what was lost

    def hang_up(self, seconds: float) -> None:
        """Both sides of every call end it (the second end is a no-op)."""
        now = self.at(seconds)
        futures = [
            self._end(user, c.call_id, now)
            for c in self.calls
            if c.call_id is not None
            for user in (c.fan, c.creator)
        ]
        for future in futures:
            future.result()

    def run(self) -> float:
        """The whole simulated span; wall seconds taken."""
        t0 = time.perf_counter()
        self.place_and_accept()
        span = self.plan.minutes * 60
        ticks = span // self.plan.tick_s
        for k in range(1, ticks + 1):
            seconds = 2 + k * self.plan.tick_s
            if seconds - 2 >= span:
                break
            self.tick(seconds, sweep=k % max(1, 60 // self.plan.tick_s) == 0)
            if time.perf_counter() - t0 > self.plan.max_seconds:
                raise TimeoutError(f"the soak ran past {self.plan.max_seconds}s of wall time")
        self.hang_up(2 + span - 1)  # one second before minute minutes+1 starts
        self.pool.shutdown(wait=True)
        return time.perf_counter() - t0


SILENT_AFTER_S = 120  # a silent creator's last heartbeat, seconds after the call connected
LOST_MINUTE = 3  # the minute whose job a "lost" call never gets


def expected(c: CallPlan, plan: SoakPlan) -> tuple[str, str, int]:
    """(state, end reason, minutes billed) the call must end with."""
    from lib.config import get_settings

    hang_up = plan.minutes * 60 - 1  # seconds after connecting: one second before minute minutes+1
    present_until = SILENT_AFTER_S + get_settings().call_heartbeat_timeout_s
    if c.silent and present_until < hang_up:
        # Billed for every minute that started while both were there; that ends it before a poor fan runs dry.
        return ("ended", "heartbeat_timeout", -(-present_until // 60))
    affordable = (plan.rate * 7 // 2) // plan.rate  # a poor fan's whole minutes
    if c.poor and plan.minutes > affordable:
        return ("ended", "insufficient_funds", affordable)
    return ("ended", "hangup", plan.minutes)


def check(plan: SoakPlan, soak: Soak) -> dict[str, Any]:
    """The books and the outcomes."""
    from lib import db, ledger

    with db.transaction(statement_timeout_ms=120_000) as conn:
        report = ledger.reconcile(conn)
        twice = conn.execute(
            """SELECT count(*) AS n FROM (
                   SELECT reference_id, metadata->>'minute' FROM token_transactions
                   WHERE reference_type = 'call' AND type = 'call' AND amount < 0
                   GROUP BY 1, 2 HAVING count(*) > 1) d"""
        ).fetchone()
        rows = conn.execute(
            """SELECT c.id, c.state, c.end_reason, c.last_billed_minute, c.total_cost,
                      coalesce(t.charges, 0) AS charges, coalesce(t.paid, 0) AS paid
               FROM call_sessions c
               LEFT JOIN (SELECT reference_id, count(*) AS charges, -sum(amount) AS paid FROM token_transactions
                          WHERE reference_type = 'call' AND type = 'call' AND amount < 0 GROUP BY 1) t
                      ON t.reference_id = c.id::text"""
        ).fetchall()
        minutes_billed = conn.execute(
            "SELECT count(*) AS n FROM token_transactions WHERE type = 'call' AND amount < 0"
        ).fetchone()
    by_id = {r["id"]: r for r in rows}
    mismatched = [
        str(r["id"]) for r in rows if r["charges"] != r["last_billed_minute"] or r["paid"] != r["total_cost"]
    ]
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    for c in soak.calls:
        row = by_id.get(c.call_id) if c.call_id else None
        if row is None:
            unexpected.append(f"call {c.n}: never placed")
            continue
        outcome = f"{row['state']}/{row['end_reason']}/{row['last_billed_minute']}min"
        outcomes[outcome] += 1
        want = expected(c, plan)
        got = (row["state"], row["end_reason"], row["last_billed_minute"])
        if got != want:
            unexpected.append(
                f"call {c.n} ({'poor' if c.poor else 'silent' if c.silent else 'normal'}): {got}, want {want}"
            )
    return {
        "reconcile_ok": report.ok,
        "users_checked": report.users_checked,
        "balance_drift": len(report.balance_drift),
        "debt_drift": len(report.debt_drift),
        "chain_breaks": len(report.chain_breaks),
        "conservation_drift": report.conservation_drift,
        "internal_net": report.internal_net,
        "minutes_charged_twice": int(twice["n"]) if twice else -1,
        "calls_total_not_their_charges": len(mismatched),
        "minutes_billed": int(minutes_billed["n"]) if minutes_billed else 0,
        "outcomes": dict(outcomes),
        "unexpected_outcomes": unexpected[:20],
    }


def soak(plan: SoakPlan) -> dict[str, Any]:
    """Seed, run, check; the report."""
    counter = LogCounter()
    logging.getLogger().addHandler(counter)
    logging.getLogger("digis").addHandler(counter)
    logging.getLogger("digis").propagate = False
    logging.getLogger().setLevel(logging.WARNING)
    seed(plan.database, plan)
    tally = Tally()
    with stack.running(plan.database, router=False, redis_down_router=False) as st:
        stack.use_env({**st.env, "DB_POOL_MAX": str(plan.workers)})
        runner = Soak(plan, tally)
        wall = runner.run()
        books = check(plan, runner)
    ops = sum(n for k, n in tally.ops.items() if not k.endswith(":error"))
    checks_ok = (
        books["reconcile_ok"]
        and books["minutes_charged_twice"] == 0
        and books["calls_total_not_their_charges"] == 0
        and not books["unexpected_outcomes"]
        and not tally.failures
    )
    return {
        "plan": asdict(plan),
        "ok": checks_ok,
        "wall_s": wall,
        "simulated_s": plan.minutes * 60,
        "operations": ops,
        "operations_per_s": ops / wall if wall else 0.0,
        "minutes_billed_per_s": books["minutes_billed"] / wall if wall else 0.0,
        "by_kind": {
            kind: {
                "count": len(values),
                "p50_ms": client.percentile(values, 50) * 1000,
                "p99_ms": client.percentile(values, 99) * 1000,
            }
            for kind, values in sorted(tally.latencies.items())
        },
        "statuses": dict(tally.statuses),
        "errors": tally.failures,
        "logged": dict(counter.counts),
        "log_samples": counter.samples,
        "books": books,
    }


def main(argv: list[str] | None = None) -> int:
    """CLI."""
    defaults = SoakPlan()
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=defaults.calls)
    parser.add_argument("--minutes", type=int, default=defaults.minutes)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--database", default=defaults.database)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    parser.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = parser.parse_args(argv)
    plan = SoakPlan(calls=args.calls, minutes=args.minutes, workers=args.workers, database=args.database)
    try:
        result = soak(plan)
    finally:
        if not args.keep:
            stack.drop_database(plan.database)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    b = result["books"]
    print(
        f"soak: {plan.calls} calls x {plan.minutes} simulated minutes in {result['wall_s']:.1f} s wall: "
        f"{result['operations']:,} operations ({result['operations_per_s']:.0f}/s), "
        f"{b['minutes_billed']:,} minutes billed ({result['minutes_billed_per_s']:.0f}/s)"
    )
    for kind, k in result["by_kind"].items():
        print(f"  {kind:<11} {k['count']:>6,}  p50 {k['p50_ms']:7.1f} ms  p99 {k['p99_ms']:7.1f} ms")
    print(
        f"  books: reconcile {'ok' if b['reconcile_ok'] else 'FAILED'}, balance drift {b['balance_drift']}, "
        f"minutes charged twice {b['minutes_charged_twice']}, totals != charges {b['calls_total_not_their_charges']}"
    )
    print(f"  outcomes: {b['outcomes']}")
    if b["unexpected_outcomes"] or result["errors"]:
        print(f"  unexpected: {b['unexpected_outcomes'][:5]} errors: {result['errors'][:5]}")
    print(f"  logged warnings/errors (expected: QStash not run): {result['logged']}")
    print(f"soak {'PASSED' if result['ok'] else 'FAILED'}; details in {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

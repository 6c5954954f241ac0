"""Row: the billing sweep. N active calls due for one minute, charged by one GET /api/cron/bill-active-calls;
beside it the same number of charges made one call at a time (`lib.calls.bill_call_minute`, what the QStash job
runs, each in its own transaction). Then the books: `ledger.reconcile`, every cached balance against its ledger
sum, every (call, minute) charged at most once, and every call's total against its charges.

Each pass first makes every call due for exactly its next minute (connected `last_billed_minute` minutes and 5 s
ago, both sides seen now), so the keys charged are always new and repeated runs never double-charge. The
sweep's figure is its HTTP round trip (the commit precedes the response); its after-commit fan-out (the Pusher
events of every charge, sent through soketi) is timed separately, until the outbox rows are all sent. The
one-at-a-time loop leaves its after-commit work undone (its events stay in the outbox, purged by later runs),
so both figures are the charging alone.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from bench import client, stack
from bench.client import Request, SourceIps

CRON_PATH = "/api/cron/bill-active-calls"


PRESENT_FOR_S = (
    600  # both sides count as present this long: a slow one-at-a-time pass outlasts the 45 s timeout
)


def make_due(database: str, ids: list[UUID]) -> None:
    """Make each call due for exactly its next minute, both sides present for the whole pass."""
    from lib.calls.billing import MINUTE_S

    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        conn.execute(
            """UPDATE call_sessions
               SET connected_at = now() - make_interval(secs => last_billed_minute * %(m)s + 5),
                   fan_last_seen_at = now() + make_interval(secs => %(present)s),
                   creator_last_seen_at = now() + make_interval(secs => %(present)s)
               WHERE id = ANY(%(ids)s) AND state = 'active'""",
            {"m": MINUTE_S, "ids": ids, "present": PRESENT_FOR_S - 45},
        )


def _outbox_mark(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM realtime_outbox").fetchone()
    return int(row[0]) if row else 0


def _wait_drained(database: str, mark: int, timeout_s: float) -> tuple[float | None, int]:
    """Seconds until every outbox row after `mark` was sent (None on timeout), and how many there were."""
    t0 = time.perf_counter()
    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        while True:
            row = conn.execute(
                """SELECT count(*) FILTER (WHERE sent_at IS NULL AND attempts = 0), count(*)
                   FROM realtime_outbox WHERE id > %s""",
                (mark,),
            ).fetchone()
            assert row is not None
            pending, total = int(row[0]), int(row[1])
            if pending == 0:
                return time.perf_counter() - t0, total
            if time.perf_counter() - t0 > timeout_s:
                return None, total
            time.sleep(0.05)


def sweep(st: stack.Stack, ids: list[UUID], *, drain_timeout_s: float) -> dict[str, Any]:
    """One cron run over the due calls, over HTTP; then its event fan-out until delivered."""
    import asyncio

    from lib.config import get_settings

    make_due(st.database, ids)
    with psycopg.connect(stack.database_url(st.database)) as conn:
        mark = _outbox_mark(conn)
    secret = get_settings().cron_secret.get_secret_value()
    host, port = client.split_url(st.router_url)

    async def once() -> tuple[float, client.Response]:
        conn = client.Connection(host, port, SourceIps(400_000).next())
        try:
            t0 = time.perf_counter()
            response = await conn.send(Request("GET", CRON_PATH, (("authorization", f"Bearer {secret}"),)))
            return time.perf_counter() - t0, response
        finally:
            await conn.close()

    asyncio.run(
        client.load(
            st.router_url, lambda _i: Request("GET", CRON_PATH), clients=1, requests=1, ips=SourceIps(410_000)
        )
    )  # a 401 that imports the function: time the sweep, not the import
    seconds, response = asyncio.run(once())
    if response.status != 200:  # reported, not raised: a sweep that fails is a result too
        return {"seconds": seconds, "status": response.status, "error": response.body[:1000].decode(errors="replace"),
                "answer": {}, "fanout_seconds": None, "events": 0}  # fmt: skip
    drained, events = _wait_drained(st.database, mark, drain_timeout_s)
    return {
        "seconds": seconds,
        "status": 200,
        "answer": response.json(),
        "fanout_seconds": drained,
        "events": events,
    }


def one_at_a_time(st: stack.Stack, ids: list[UUID]) -> dict[str, Any]:
    """The same charges, one transaction per call, as the per-minute job makes them."""
    from lib import calls

    make_due(st.database, ids)
    url = stack.database_url(st.database)
    conn = psycopg.connect(url, row_factory=dict_row, prepare_threshold=None, application_name="digis-bench")
    try:
        rows = conn.execute(
            "SELECT id, last_billed_minute FROM call_sessions WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        conn.commit()
        due = {r["id"]: int(r["last_billed_minute"]) + 1 for r in rows}
        statuses: dict[str, int] = {}
        t0 = time.perf_counter()
        for call_id in ids:
            with conn.transaction():
                result = calls.bill_call_minute(conn, call_id, due[call_id], datetime.now(UTC))
            statuses[result.status] = statuses.get(result.status, 0) + 1
        seconds = time.perf_counter() - t0
    finally:
        conn.close()  # its after-commit callbacks (keyed weakly by the connection) go with it, unrun
    return {"seconds": seconds, "statuses": statuses}


def books(database: str, ids: list[UUID]) -> dict[str, Any]:
    """Ledger invariants after the charges."""
    from lib import db, ledger

    with db.transaction(statement_timeout_ms=600_000) as conn:
        report = ledger.reconcile(conn)
        dup = conn.execute(
            """SELECT count(*) AS n FROM (
                   SELECT reference_id, metadata->>'minute' FROM token_transactions
                   WHERE type = 'call' AND amount < 0 AND reference_type = 'call'
                   GROUP BY 1, 2 HAVING count(*) > 1) d"""
        ).fetchone()
        mismatched = conn.execute(
            """SELECT count(*) AS n FROM call_sessions c
               LEFT JOIN (SELECT reference_id, count(*) AS charges, -sum(amount) AS paid FROM token_transactions
                          WHERE reference_type = 'call' AND type = 'call' AND amount < 0
                            AND reference_id = ANY(%(ids)s)
                          GROUP BY reference_id) t ON t.reference_id = c.id::text
               WHERE c.id = ANY(%(uuids)s)
                 AND (c.total_cost <> coalesce(t.paid, 0) OR c.last_billed_minute <> coalesce(t.charges, 0))""",
            {"ids": [str(i) for i in ids], "uuids": ids},
        ).fetchone()
    return {
        "reconcile_ok": report.ok,
        "users_checked": report.users_checked,
        "balance_drift": len(report.balance_drift),
        "debt_drift": len(report.debt_drift),
        "chain_breaks": len(report.chain_breaks),
        "conservation_drift": report.conservation_drift,
        "internal_net": report.internal_net,
        "minutes_charged_twice": int(dup["n"]) if dup else -1,
        "calls_total_not_their_charges": int(mismatched["n"]) if mismatched else -1,
    }


def run(st: stack.Stack, ids: list[UUID], *, drain_timeout_s: float = 300.0) -> dict[str, Any]:
    """Sweep, then one at a time, then the books."""
    swept = sweep(st, ids, drain_timeout_s=drain_timeout_s)
    single = one_at_a_time(st, ids)
    checks = books(st.database, ids)
    charged = int(swept["answer"].get("minutesBilled", 0))
    return {
        "calls": len(ids),
        "sweep": swept,
        "one_at_a_time": single,
        "books": checks,
        "speedup": single["seconds"] / max(swept["seconds"], 1e-9),
        "sweep_charged_all": charged == len(ids) and single["statuses"].get("billed", 0) == len(ids),
    }

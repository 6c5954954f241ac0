"""Row: GET /api/stats/active-sessions at scale, from Redis and with Redis down, beside a plain COUNT(*).

Both paths go through the real function over HTTP: one router whose Upstash gateway answers, one whose
UPSTASH_REDIS_REST_URL is a dead port (the function's breaker then answers from the partial index, and the rate
limiter counts in process). Their batches alternate, so drift on a noisy machine hits both alike. Beside them,
the count the function avoids: `SELECT count(*) ... WHERE state = 'active'` with index scans disabled (a
sequential scan of every row), timed a few times, plus the same count on the partial index, in SQL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from bench import client, stack
from bench.client import LoadResult, Request, SourceIps

PATH = "/api/stats/active-sessions"
PLAIN_COUNT = "SELECT count(*) FROM call_sessions WHERE state = 'active'"
NO_INDEX = ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan")


def _request(_: int) -> Request:
    return Request("GET", PATH)


def _probe(url: str) -> dict[str, Any]:
    async def one() -> dict[str, Any]:
        host, port = client.split_url(url)
        conn = client.Connection(host, port, SourceIps(900_000).next())
        try:
            response = await conn.send(_request(0))
        finally:
            await conn.close()
        if response.status != 200:
            raise RuntimeError(f"{PATH} answered {response.status}: {response.body[:300]!r}")
        body: dict[str, Any] = response.json()
        return body

    return asyncio.run(one())


def fill_redis_set() -> int | None:
    """Write every active call id into the function's Redis set (what the cleanup cron does)."""
    from lib import db, stats

    with db.transaction() as conn:
        return stats.reconcile_active_sessions(conn)


def _upstash_roundtrips(n: int) -> dict[str, float]:
    """One SCARD through the Upstash REST client and the local gateway, from this process: the unit the Redis path
    pays twice (the rate limiter's pipeline, then SCARD)."""
    from lib import redis

    client_ = redis.get_redis()
    key = redis.key("bench", "roundtrip")  # any key: the round trip is what is timed
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client_.scard(key)
        times.append(time.perf_counter() - t0)
    return {
        "calls": n,
        "p50_ms": client.percentile(times, 50) * 1000,
        "p99_ms": client.percentile(times, 99) * 1000,
    }


def _sql_timings(database: str, runs: int, *, index: bool) -> tuple[list[float], str, int]:
    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        if not index:
            for setting in NO_INDEX:
                conn.execute(f"SET {setting} = off")
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + PLAIN_COUNT).fetchone()
        node = _scan_node(plan[0][0]["Plan"]) if plan else "?"
        times, count = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            row = conn.execute(PLAIN_COUNT).fetchone()
            times.append(time.perf_counter() - t0)
            count = int(row[0]) if row else 0
        return times, node, count


def _scan_node(plan: dict[str, Any]) -> str:
    """The scan at the bottom of a plan: 'Seq Scan on call_sessions', 'Index Only Scan using ...'."""
    while plan.get("Plans"):
        plan = plan["Plans"][0]
    name = str(plan.get("Node Type"))
    if plan.get("Index Name"):
        return f"{name} using {plan['Index Name']}"
    return f"{name} on {plan.get('Relation Name')}"


def run(st: stack.Stack, *, requests: int, rounds: int, plain_runs: int, index_runs: int) -> dict[str, Any]:
    """Measure both function paths (interleaved), then the plain and the indexed count in SQL."""
    assert st.router_redis_down_url is not None
    written = fill_redis_set()
    ips = SourceIps()
    targets = {"redis": st.router_url, "database": st.router_redis_down_url}
    answers = {name: _probe(url) for name, url in targets.items()}
    for url in targets.values():  # warm: function imported, pool open, breaker tripped on the dead one
        asyncio.run(client.load(url, _request, clients=1, requests=50, ips=ips))
    results = {name: LoadResult() for name in targets}
    for r in range(rounds):
        for name, url in targets.items():
            n = client.share(requests, rounds, r)
            results[name].extend(asyncio.run(client.load(url, _request, clients=1, requests=n, ips=ips)))
    upstash = _upstash_roundtrips(max(50, requests // 5))
    plain, plain_node, plain_count = _sql_timings(st.database, plain_runs, index=False)
    indexed, index_node, _ = _sql_timings(st.database, index_runs, index=True)
    out: dict[str, Any] = {
        "redis_set_written": written,
        "upstash_scard_roundtrip": upstash,
        "count": plain_count,
        "plain_count": {"runs_ms": [t * 1000 for t in plain], "median_ms": client.median(plain) * 1000,
                        "plan": plain_node},
        "indexed_count_sql": {"runs": len(indexed), "median_ms": client.median(indexed) * 1000,
                              "plan": index_node},
    }  # fmt: skip
    for name, result in results.items():
        out[name] = {
            "source": answers[name].get("source"),
            "count": answers[name].get("count"),
            "requests": len(result.latencies),
            "p50_ms": client.percentile(result.latencies, 50) * 1000,
            "p99_ms": client.percentile(result.latencies, 99) * 1000,
            "max_ms": max(result.latencies, default=0) * 1000,
            "unexpected": result.unexpected,
            "statuses": dict(result.statuses),
        }
    out["plain_over_function_db_p50"] = out["plain_count"]["median_ms"] / max(out["database"]["p50_ms"], 1e-9)
    out["plain_over_sql_index"] = out["plain_count"]["median_ms"] / max(
        out["indexed_count_sql"]["median_ms"], 1e-9
    )
    return out

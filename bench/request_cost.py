"""Row: what a request costs through the Vercel-style server: GET /tokens/balance and POST /tips/send beside the
floor (GET /api/bench/floor: create_app() and SELECT 1 through the same pool), at 1 and at 32 clients.

Every request carries a seeded fan's token (a different fan each time, round robin) and comes from its own
connection's loopback address, rotated every 100 requests: the rate limiter runs on every request, as in
production (one Upstash pipeline per request), yet no user or address comes near 300 a minute, so nothing is
refused. The floor gets the same token, so its rate-limit work (IP and user) matches the functions'. Tips all
go to one creator, whose row each tip locks. Targets alternate batch by batch within each client count.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import Any

import psycopg

from bench import auth, client, seed, stack
from bench.client import LoadResult, Request, SourceIps

TARGETS = ("floor", "balance", "tips")


class Fans:
    """Pre-minted Authorization headers for fans 1..n, handed out round robin."""

    def __init__(self, first: int, count: int) -> None:
        self.headers = [auth.bearer(seed.fan_id(first + i)) for i in range(count)]
        self.next = 0

    def take(self) -> tuple[str, str]:
        """The next fan's header."""
        header = self.headers[self.next % len(self.headers)]
        self.next += 1
        return header


def make_requests(fans: Fans, creator: str) -> dict[str, Any]:
    """Request builders per target."""
    json_type = ("content-type", "application/json")

    serial = itertools.count()

    def tip() -> bytes:
        # Each tip distinct: an identical tip from the same fan within 20 s is a retry, answered without a debit.
        return json.dumps(
            {"toCreatorId": creator, "amountTokens": 1, "message": f"bench {next(serial)}"}
        ).encode()

    return {
        "floor": lambda _i: Request("GET", stack.FLOOR_PATH, (fans.take(),)),
        "balance": lambda _i: Request("GET", "/api/tokens/balance", (fans.take(),)),
        "tips": lambda _i: Request("POST", "/api/tips/send", (fans.take(), json_type), tip()),
    }


class IdleInTransaction:
    """Samples pg_stat_activity while a batch runs: the longest a function's pooled connection sat idle inside
    an open transaction (the database waiting on the function, not the other way round)."""

    def __init__(self, database: str, interval_s: float = 0.1) -> None:
        self.database, self.interval_s = database, interval_s
        self.longest_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="idle-in-transaction", daemon=True)

    def __enter__(self) -> IdleInTransaction:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        with psycopg.connect(stack.database_url(self.database), autocommit=True) as conn:
            while not self._stop.wait(self.interval_s):
                row = conn.execute(
                    """SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0) FROM pg_stat_activity
                       WHERE datname = current_database() AND application_name = 'digis-api'
                         AND state = 'idle in transaction'"""
                ).fetchone()
                self.longest_s = max(self.longest_s, float(row[0]) if row else 0.0)


def run(
    st: stack.Stack,
    *,
    fans: int,
    requests_1: int,
    requests_32: int,
    rounds: int,
    concurrency: tuple[int, ...] = (1, 32),
) -> dict[str, Any]:
    """p50, p99 and requests/s per target and client count, and each target's ratios to the floor."""
    pool = Fans(1, fans)
    builders = make_requests(pool, str(seed.creator_id(1)))
    ips = SourceIps(100_000)
    for name in TARGETS:  # warm: every function imported, the pool open
        asyncio.run(client.load(st.router_url, builders[name], clients=4, requests=40, ips=ips))
    out: dict[str, Any] = {}
    for clients in concurrency:
        total = requests_1 if clients == 1 else requests_32
        results = {name: LoadResult() for name in TARGETS}
        idle = {name: 0.0 for name in TARGETS}
        for r in range(rounds):
            for name in TARGETS:
                n = client.share(total, rounds, r)
                batch = client.load(st.router_url, builders[name], clients=clients, requests=n, ips=ips)
                with IdleInTransaction(st.database) as sampler:
                    results[name].extend(asyncio.run(batch))
                idle[name] = max(idle[name], sampler.longest_s)
        row: dict[str, Any] = {}
        for name, result in results.items():
            row[name] = {
                "requests": len(result.latencies),
                "p50_ms": client.percentile(result.latencies, 50) * 1000,
                "p99_ms": client.percentile(result.latencies, 99) * 1000,
                "rps": result.requests_per_s,
                "unexpected": result.unexpected,
                "statuses": dict(result.statuses),
                "errors": result.errors[:5],
                "longest_idle_in_transaction_ms": idle[name] * 1000,
            }
        floor = row["floor"]
        for name in ("balance", "tips"):
            row[name]["p50_over_floor"] = row[name]["p50_ms"] / max(floor["p50_ms"], 1e-9)
            row[name]["p99_over_floor"] = row[name]["p99_ms"] / max(floor["p99_ms"], 1e-9)
            row[name]["floor_rps_over_rps"] = floor["rps"] / max(row[name]["rps"], 1e-9)
        out[str(clients)] = row
    out["rate_limit_handling"] = (
        "limits enforced on every request (Upstash pipeline per request); distinct fans round robin and a "
        "fresh loopback source address per 100 requests keep every user and IP under 300/min; 429s counted"
    )
    return out

"""`python -m bench.run [--scale small|full] [--reseed]`: every benchmark row, side by side, in one run.

Starts its own platform (bench.stack) on a dedicated, seeded database, runs the rows in a fixed order (active
sessions, request cost, realtime and webhook latency, billing sweep, token verification, cold start), prints one
table and writes bench.json, bench.md and bench.png. Loopback only; every count is bounded by the scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import report, seed, stack

RESULTS = stack.ROOT / "bench" / "results"
ROWS = ("active_sessions", "request_cost", "side_by_side", "latency", "billing", "token_verify", "coldstart")


@dataclass(frozen=True)
class Scale:
    """How big each row is."""

    name: str
    database: str
    plan: seed.SeedPlan
    session_requests: int  # per active-sessions path
    plain_runs: int
    index_runs: int
    cost_requests_1: int  # per target at 1 client
    cost_requests_32: int  # per target at 32 clients
    rounds: int
    latency_samples: int
    token_verifications: int
    coldstart_runs: int
    sbs_seconds: float = 4.0  # per wrk run in the side-by-side row
    coldstart_files: list[str] | None = field(default=None)  # None: every api/ file


SCALES = {
    "full": Scale(
        "full", "digis_bench",
        seed.SeedPlan(sessions=10_000_000, active=10_000, fans=10_000, creators=10_000, fan_balance=10**9, rate=10),
        session_requests=1_000, plain_runs=3, index_runs=20, cost_requests_1=1_000, cost_requests_32=2_000,
        rounds=5, latency_samples=200, token_verifications=5_000, coldstart_runs=5,
    ),
    "small": Scale(
        "small", "digis_bench_small",
        seed.SeedPlan(sessions=200_000, active=1_000, fans=2_000, creators=1_000, fan_balance=10**9, rate=10),
        session_requests=300, plain_runs=3, index_runs=10, cost_requests_1=200, cost_requests_32=640,
        rounds=4, latency_samples=50, token_verifications=1_000, coldstart_runs=1,
    ),
    # The smoke test's: proves the code runs end to end, measures nothing worth reading.
    "tiny": Scale(
        "tiny", "digis_bench_tiny",
        seed.SeedPlan(sessions=3_000, active=40, fans=100, creators=40, fan_balance=10**6, rate=10),
        session_requests=20, plain_runs=1, index_runs=2, cost_requests_1=12, cost_requests_32=64,
        rounds=2, latency_samples=3, token_verifications=20, coldstart_runs=1,
        coldstart_files=["api/health.py", "api/tokens/balance.py"], sbs_seconds=1,
    ),
}  # fmt: skip


def say(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine(database: str) -> dict[str, Any]:
    """What ran this: cores, CPU model, memory, Python, PostgreSQL."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    free = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    memory = next((ln.split()[1] for ln in free.splitlines() if ln.startswith("Mem:")), "?")
    with psycopg.connect(stack.database_url(database)) as conn:
        row = conn.execute("SELECT version()").fetchone()
        settings: dict[str, str] = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather')"
        ).fetchall())  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "free_h": free,
        "python": platform.python_version(),
        "postgres": str(row[0]).split(" on ")[0] if row else "?",
        "postgres_settings": settings,
        "load_average_at_start": os.getloadavg(),
    }


def prepare(scale: Scale) -> list[Any]:
    """Purge old outbox rows; the seeded active calls, which must all be active (an interrupted run may have
    ended some: they are made active again, their charges and totals untouched)."""
    with psycopg.connect(stack.database_url(scale.database), autocommit=True) as conn:
        conn.execute("DELETE FROM realtime_outbox WHERE created_at < now() - interval '10 minutes'")
        revived = conn.execute(
            """UPDATE call_sessions SET state = 'active', ended_at = NULL, end_reason = NULL, ended_by = NULL,
                      fan_last_seen_at = now(), creator_last_seen_at = now()
               WHERE starts_with(id::text, %s) AND state = 'ended'""",
            (seed.ACTIVE_PREFIX[:9],),
        ).rowcount
        if revived:
            say(f"{revived} seeded calls had ended (an earlier run outlasted their heartbeats): active again")
        ids = seed.active_ids(conn)
    if len(ids) != scale.plan.active:
        raise SystemExit(
            f"{scale.database}: {len(ids)} of the {scale.plan.active} seeded calls are active "
            "(an interrupted run ended some): run again with --reseed"
        )
    return ids


def run_rows(
    scale: Scale, only: set[str], *, runtime_venv: bool = True, extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every row, in order, on one running stack."""
    from bench import (
        active_sessions,
        auth,
        billing,
        coldstart,
        latency,
        request_cost,
        runtime,
        side_by_side,
        token_verify,
    )

    ids = prepare(scale)
    rows: dict[str, Any] = {}
    plan = scale.plan

    def attempt(name: str, measure: Callable[[], dict[str, Any]]) -> None:
        # A row that fails (another feature mid-change, a function answering 500) is reported, not fatal.
        t0 = time.perf_counter()
        try:
            rows[name] = measure()
        except Exception as exc:
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            say(f"{name} FAILED: {rows[name]['error'][:500]}")
        say(f"{name}: {time.perf_counter() - t0:.0f} s")

    with stack.running(
        scale.database, redis_down_router="active_sessions" in only, extra_env=extra_env
    ) as st:
        env = {**os.environ, **st.env}
        if "active_sessions" in only:
            attempt("active_sessions", lambda: active_sessions.run(
                st, requests=scale.session_requests, rounds=scale.rounds * 2, plain_runs=scale.plain_runs,
                index_runs=scale.index_runs,
            ))  # fmt: skip
        if "request_cost" in only:
            attempt("request_cost", lambda: request_cost.run(
                st, fans=plan.fans, requests_1=scale.cost_requests_1, requests_32=scale.cost_requests_32,
                rounds=scale.rounds,
            ))  # fmt: skip
        if "side_by_side" in only:
            attempt("side_by_side", lambda: side_by_side.run(
                st, fans=plan.fans, creator=plan.creators, seconds=scale.sbs_seconds, rounds=scale.rounds // 2 or 1,
            ))  # fmt: skip
        if "latency" in only:
            attempt("realtime", lambda: latency.realtime_tips(
                st, samples=scale.latency_samples, creator=plan.creators, first_fan=1))  # fmt: skip
            attempt("webhook", lambda: latency.webhooks(st, samples=scale.latency_samples, first_fan=1))
        if "billing" in only:
            attempt("billing", lambda: billing.run(st, ids))
        if "token_verify" in only:
            attempt("token_verify", lambda: token_verify.run(env, scale.token_verifications))
        if "coldstart" in only:
            python, what = runtime.python(build=runtime_venv)

            def cold() -> dict[str, Any]:
                result = coldstart.run(
                    env, python=python, runs=scale.coldstart_runs, files=scale.coldstart_files,
                    token=auth.token(seed.fan_id(plan.fans)),
                )  # fmt: skip
                result["interpreter"] = f"{what}, {runtime.describe(python)}"
                return result

            attempt("coldstart", cold)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the results."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench database again")
    parser.add_argument("--database", help="database name (default: per scale)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where bench.json/.md/.png go")
    parser.add_argument("--only", nargs="+", choices=ROWS, help="run only these rows")
    parser.add_argument("--drop-after", action="store_true", help="drop the database at the end (tests)")
    parser.add_argument(
        "--dev-python",
        action="store_true",
        help="cold starts with this interpreter instead of a venv of requirements.txt only (tests, offline)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a function setting for this run (an experiment, e.g. DB_POOL_MAX=16); recorded in bench.json",
    )
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    scale = SCALES[args.scale]
    if args.database:
        scale = Scale(**{**asdict(scale), "plan": scale.plan, "database": args.database})
    started = time.perf_counter()
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        seeded = seed.ensure(scale.database, scale.plan, reseed=args.reseed)
        info = machine(scale.database)
        rows = run_rows(scale, set(args.only or ROWS), runtime_venv=not args.dev_python, extra_env=extra_env)
    finally:
        if args.drop_after:
            stack.drop_database(scale.database)
    meta = {
        "generated_at": generated,
        "scale": scale.name,
        "duration_s": time.perf_counter() - started,
        "machine": info,
        "seed": {"plan": asdict(scale.plan), **seeded},
        "database": scale.database,
        "config": {
            "db_pool_max": extra_env.get("DB_POOL_MAX", "4 (default)"),
            "platform_fee_percent": 0,
            "overrides": extra_env,
        },
    }
    table = report.lines(rows)
    paths = report.write(args.out, table, meta, rows)
    print(report.text_table(table))
    missed = [line.row for line in table if line.met is False]
    say(
        f"{scale.name} scale in {meta['duration_s']:.0f} s; wrote {', '.join(str(p) for p in paths.values())}"
    )
    if missed:
        say(f"goals missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

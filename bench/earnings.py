"""Earnings analytics over a creator with 1M ledger rows: seeds a scratch database, prints p50/p99 per route.

    .venv/bin/python -m bench.earnings [--rows 1000000]

The rows go in through one INSERT ... SELECT (the rollup triggers of migration 0096 fire as for the ledger), spread
over 3 years, as transfer legs of 1000 fans (tips, gifts, video and voice minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from lib import analytics, migrate
from lib.users import User

ADMIN = os.environ.get("DIGIS_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = "digis_bench_earnings"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{NAME}"')
    url = ADMIN.rsplit("/", 1)[0] + "/" + NAME
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.apply(conn)
        with psycopg.connect(url, row_factory=dict_row) as conn:
            creator = uuid.uuid4()
            conn.execute(
                "INSERT INTO users (id, username, role, is_creator) VALUES (%s, 'bench_creator', 'creator', true)",
                [creator],
            )
            conn.execute(
                """INSERT INTO users (id, username) SELECT gen_random_uuid(), 'fan_' || g FROM generate_series(1, 1000) g"""
            )
            started = time.perf_counter()
            conn.execute(
                """
                WITH fans AS (SELECT array_agg(id) AS ids FROM users WHERE username LIKE 'fan\\_%%')
                INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, counterparty_id,
                                                reference_type, reference_id, metadata, created_at)
                SELECT gen_random_uuid(), %(c)s, CASE WHEN g %% 4 < 2 THEN 'tip' ELSE 'call' END, 1 + g %% 50, 0,
                       fans.ids[1 + g %% 1000], 'bench', 'x',
                       CASE g %% 4 WHEN 0 THEN '{}'::jsonb WHEN 1 THEN '{"gift_type":"rose"}'
                                   WHEN 2 THEN '{"callType":"video"}' ELSE '{"callType":"voice"}' END,
                       now() - (g::float / %(n)s) * interval '3 years'
                FROM generate_series(1, %(n)s) g, fans
                """,
                {"c": creator, "n": args.rows},
            )
            conn.commit()
            print(f"seeded {args.rows} ledger rows in {time.perf_counter() - started:.1f} s")
            conn.execute("ANALYZE")
            viewer = User(id=creator, email=None, username="bench_creator", display_name=None, role="creator",
                          is_creator=True, token_balance=0)  # fmt: skip
            now = datetime.now(UTC)
            routes = {
                "earnings month": lambda: analytics.earnings(conn, viewer, creator, "month", now),
                "earnings all": lambda: analytics.earnings(conn, viewer, creator, "all", now),
                "overview 7d": lambda: analytics.overview(conn, viewer, creator, "7d", now),
                "top-fans month": lambda: analytics.top_fans(conn, viewer, creator, "month", now),
                "tips/stats 30d": lambda: analytics.tip_stats(conn, viewer, "30d", now),
            }
            for name, call in routes.items():
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"{name:16s} p50 {statistics.median(times):6.2f} ms  p99 {p99:6.2f} ms")
            started = time.perf_counter()
            drift = analytics.verify(conn, creator)
            print(f"verify (full recompute from the ledger): {len(drift)} drift rows, "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms")  # fmt: skip
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()

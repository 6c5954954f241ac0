"""`python -m bench.creator_search`: creator search and discovery at 100k creators, p50/p99 per query.

Creates a scratch database (dropped afterwards) on DIGIS_BENCH_DATABASE_URL (default: the local PostgreSQL),
applies the migrations, seeds N creators (default 100,000) with realistic names, categories and ~3 follows each,
then times lib.creators.discovery.find — the exact SQL the API runs — for typical queries. Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from lib import migrate
from lib.creators import discovery

ADMIN_URL = os.environ.get("DIGIS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FIRST = ["Sophia", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Ava", "Lucas", "Mia", "Ethan", "Luna", "Kai",
         "Zoe", "Leo", "Aria", "Hugo", "Nora", "Felix", "Ivy", "Omar", "Chloe", "Ravi", "Elena", "Yuki", "Marco",
         "Anna", "Jonas", "Sara", "Diego", "Lea", "Pixel", "Nova", "Chef", "Coach", "DJ", "Dr", "Star", "Jade",
         "Max", "Rosa"]  # fmt: skip
LAST = ["Rivers", "Stone", "King", "Moon", "Gray", "Lopez", "Kim", "Berg", "Costa", "Fox", "Hart", "Lane",
        "Quinn", "Reyes", "Silva", "Wolf", "Young", "Park", "Ito", "Nash"]  # fmt: skip
CATEGORIES = ["Music", "Gaming", "Art", "Fitness", "Education", "Lifestyle", "Model", "Business", "Comedy"]
QUERIES = {
    "exact username": "sophia_rivers_4242",
    "name prefix (2 chars)": "so",
    "first name": "sophia",
    "typo": "sofia",
    "two words": "marco costa",
    "display-name typo": "olivai stone",
    "category word": "fitness",
    "no match": "zzqxvw",
}


def _seed(conn: psycopg.Connection[Any], n: int) -> None:
    conn.execute(
        """INSERT INTO users (id, email, username, display_name, creator_type, is_creator, role, video_price,
                              voice_price, created_at)
           SELECT gen_random_uuid(), 'c' || i || '@bench.test',
                  lower(f || '_' || l || '_' || i), f || ' ' || l, c, true, 'creator', 5 + i %% 50, 3 + i %% 30,
                  now() - make_interval(mins => i::int)
           FROM generate_series(1::bigint, %(n)s) AS i,
                LATERAL (SELECT (%(first)s::text[])[1 + (i * 7919) %% cardinality(%(first)s::text[])] AS f,
                                (%(last)s::text[])[1 + (i * 104729) %% cardinality(%(last)s::text[])] AS l,
                                (%(cats)s::text[])[1 + i %% cardinality(%(cats)s::text[])] AS c) names""",
        {"n": n, "first": FIRST, "last": LAST, "cats": CATEGORIES},
    )
    conn.execute(
        """INSERT INTO users (id, email, username, role) SELECT gen_random_uuid(), 'f' || i || '@bench.test',
                  'fan_' || i, 'fan' FROM generate_series(1, %(n)s / 10) AS i""",
        {"n": n},
    )
    conn.execute(
        """INSERT INTO follows (follower_id, creator_id, created_at)
           SELECT f.id, c.id, now() - make_interval(hours => (random() * 500)::int)
           FROM (SELECT id, row_number() OVER () AS k FROM users WHERE role = 'fan') f
           JOIN (SELECT id, row_number() OVER () AS k FROM users WHERE is_creator) c
             ON c.k % (SELECT count(*) FROM users WHERE role = 'fan') = f.k - 1
           WHERE random() < 0.35
           ON CONFLICT DO NOTHING"""
    )
    conn.execute("ANALYZE")


def _time(conn: psycopg.Connection[Any], runs: int, fn: Any) -> tuple[float, float, int]:
    samples, found = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        rows = fn()
        samples.append((time.perf_counter() - start) * 1000)
        conn.rollback()
        found = len(rows)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    name = f"digis_bench_search_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_conninfo(ADMIN_URL, dbname=name)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.apply(conn)
        with psycopg.connect(url, row_factory=dict_row, prepare_threshold=None) as conn:
            started = time.perf_counter()
            _seed(conn, args.creators)
            conn.commit()
            follows = conn.execute("SELECT count(*) AS n FROM follows").fetchone()
            print(
                f"seeded {args.creators:,} creators, {follows['n'] if follows else 0:,} follows "
                f"in {time.perf_counter() - started:.1f}s; trigram index: {discovery.trigram_available(conn)}"
            )
            print(f"{'query':<34}{'p50 ms':>9}{'p99 ms':>9}{'rows':>6}")
            for label, q in QUERIES.items():
                p50, p99, n = _time(
                    conn, args.runs, lambda q=q: discovery.find(conn, "search", query=q, limit=20)
                )
                print(f"search: {label + ' (' + q + ')':<26}{p50:>9.2f}{p99:>9.2f}{n:>6}")
            for feed in ("featured", "trending", "recommendations"):
                p50, p99, n = _time(
                    conn, max(20, args.runs // 10), lambda f=feed: discovery.find(conn, f, limit=20)
                )
                print(f"{feed:<34}{p50:>9.2f}{p99:>9.2f}{n:>6}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

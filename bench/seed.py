"""Set-based seeding of a bench database: users with ledger-backed balances, call history, active calls.

Every row comes from `INSERT ... SELECT generate_series` (no row-by-row inserts). Ids are deterministic
(`b0..`/`c0..` users, `a0..` active calls, `e0..` history) so later steps find them without a lookup. The
history is loaded with the secondary indexes of call_sessions dropped and rebuilt afterwards (their exact
definitions are read from the catalog first), and with foreign-key triggers off for that one session: the
referenced users are inserted just before from the same id formula. A marker row in `bench_seed` records the
plan once everything is in; a database whose marker matches the plan is reused as it is.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from bench import stack

FAN_PREFIX = "b0000000-0000-4000-8000-"
CREATOR_PREFIX = "c0000000-0000-4000-8000-"
ACTIVE_PREFIX = "a0000000-0000-4000-8000-"
HISTORY_PREFIX = "e0000000-0000-4000-8000-"
CHUNK = 1_000_000
_MARKER_KEY = "call_sessions"


@dataclass(frozen=True)
class SeedPlan:
    """What a bench database holds."""

    sessions: int  # call_sessions rows in all, the active ones included
    active: int  # active calls: fan i with creator i (a creator is in one live call at most)
    fans: int
    creators: int
    fan_balance: int  # tokens each fan starts with (one `adjustment` ledger row)
    rate: int  # tokens per minute of every active call


def fan_id(i: int) -> UUID:
    """Fan number i (1-based)."""
    return UUID(f"{FAN_PREFIX}{i:012x}")


def creator_id(i: int) -> UUID:
    """Creator number i (1-based)."""
    return UUID(f"{CREATOR_PREFIX}{i:012x}")


def active_call_id(i: int) -> UUID:
    """Active call number i (1-based): fan i calling creator i."""
    return UUID(f"{ACTIVE_PREFIX}{i:012x}")


def _say(message: str) -> None:
    print(f"[bench seed] {message}", file=sys.stderr, flush=True)


def marker(conn: psycopg.Connection) -> dict[str, object] | None:
    """The completed seed's plan, or None."""
    exists = conn.execute("SELECT to_regclass('bench_seed') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(
        "SELECT plan FROM bench_seed WHERE key = %s AND completed_at IS NOT NULL", (_MARKER_KEY,)
    ).fetchone()
    return dict(row[0]) if row else None


def ensure(database: str, plan: SeedPlan, *, reseed: bool = False) -> dict[str, float | bool]:
    """The database seeded to `plan`: reused when its marker matches, else recreated and seeded."""
    from lib.migrate import MigrationError

    if not reseed and stack.database_exists(database):
        try:
            stack.create_database(database)  # applies any new migration
        except MigrationError as exc:
            _say(f"{database} was migrated with other migration files ({exc}): seeding again")
        else:
            with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
                if marker(conn) == asdict(plan):
                    _say(f"reusing {database} (marker matches {asdict(plan)})")
                    return {"reused": True, "seconds": 0.0}
    _say(f"seeding {database}: {plan}")
    t0 = time.perf_counter()
    stack.create_database(database, drop_first=True)
    with psycopg.connect(stack.database_url(database), autocommit=True) as conn:
        _seed(conn, plan)
    seconds = time.perf_counter() - t0
    _say(f"seeded {database} in {seconds:.1f}s")
    return {"reused": False, "seconds": seconds}


def _seed(conn: psycopg.Connection, plan: SeedPlan) -> None:
    if plan.creators < plan.active or plan.fans < plan.active or plan.sessions < plan.active:
        raise ValueError(f"an active call needs its own fan and creator: {plan}")
    conn.execute(
        "CREATE TABLE bench_seed (key text PRIMARY KEY, plan jsonb NOT NULL, completed_at timestamptz)"
    )
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET synchronous_commit = off")
    _users(conn, plan)
    _history(conn, plan)
    _active(conn, plan)
    _say("vacuum analyze (visibility map for index-only scans, planner statistics)")
    for table in ("call_sessions", "users", "token_transactions"):
        conn.execute(f"VACUUM (ANALYZE) {table}")
    conn.execute(
        "INSERT INTO bench_seed (key, plan, completed_at) VALUES (%s, %s, now())",
        (_MARKER_KEY, json.dumps(asdict(plan))),
    )


def _users(conn: psycopg.Connection, plan: SeedPlan) -> None:
    _say(f"{plan.fans} fans with {plan.fan_balance} tokens each, {plan.creators} creators")
    conn.execute(
        """INSERT INTO users (id, email, username, display_name, role, is_creator, token_balance)
           SELECT (%(prefix)s || lpad(to_hex(i), 12, '0'))::uuid, 'bench_fan_' || i || '@bench.test',
                  'bench_fan_' || i, 'Bench fan ' || i, 'fan', false, %(balance)s
           FROM generate_series(1, %(n)s) i""",
        {"prefix": FAN_PREFIX, "balance": plan.fan_balance, "n": plan.fans},
    )
    conn.execute(
        """INSERT INTO users (id, email, username, display_name, role, is_creator, video_price, voice_price)
           SELECT (%(prefix)s || lpad(to_hex(i), 12, '0'))::uuid, 'bench_creator_' || i || '@bench.test',
                  'bench_creator_' || i, 'Bench creator ' || i, 'creator', true, %(rate)s, %(rate)s
           FROM generate_series(1, %(n)s) i""",
        {"prefix": CREATOR_PREFIX, "rate": plan.rate, "n": plan.creators},
    )
    # The balance is a ledger fact: one adjustment per fan, so reconcile() finds the books balanced.
    conn.execute(
        """INSERT INTO token_transactions (entry_id, user_id, type, amount, balance_after, reference_type,
                                          reference_id, idempotency_key)
           SELECT gen_random_uuid(), id, 'adjustment', token_balance, token_balance, 'bench', 'seed',
                  'bench-seed:' || id
           FROM users WHERE starts_with(id::text, 'b0000000-') AND token_balance > 0"""
    )


def _history(conn: psycopg.Connection, plan: SeedPlan) -> None:
    history = plan.sessions - plan.active
    indexes = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.tablename = 'call_sessions' AND i.schemaname = 'public'
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""
    ).fetchall()
    constraints = conn.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'call_sessions'::regclass AND contype = 'u'"""
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for name, _ in constraints:
        conn.execute(f'ALTER TABLE call_sessions DROP CONSTRAINT "{name}"')
    conn.execute("SET session_replication_role = replica")  # no FK trigger per row; ids are built valid
    try:
        for lo in range(1, history + 1, CHUNK):
            hi = min(history, lo + CHUNK - 1)
            t0 = time.perf_counter()
            conn.execute(_HISTORY_SQL, {"lo": lo, "hi": hi, "fans": plan.fans, "creators": plan.creators})
            _say(f"history rows {lo:,}-{hi:,} of {history:,} ({time.perf_counter() - t0:.1f}s)")
    finally:
        conn.execute("SET session_replication_role = origin")
    t0 = time.perf_counter()
    conn.execute("SET max_parallel_maintenance_workers = 2")
    for name, definition in constraints:
        conn.execute(f'ALTER TABLE call_sessions ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        conn.execute(definition)
    _say(
        f"rebuilt {len(indexes)} indexes and {len(constraints)} unique constraints ({time.perf_counter() - t0:.1f}s)"
    )


# Ended, missed, declined and cancelled calls three seconds apart from 2024-01-01, costs left at zero (the
# ledger holds no charges for them; the bench's checks look at the active calls only).
_HISTORY_SQL = f"""
INSERT INTO call_sessions (id, fan_id, creator_id, initiated_by, call_type, state, channel, rate_per_minute,
                           created_at, ring_expires_at, connected_at, ended_at, end_reason)
SELECT s.id, s.fan, s.creator, s.fan, CASE WHEN mod(s.g, 3) = 0 THEN 'voice' ELSE 'video' END, s.state,
       'call-' || replace(s.id::text, '-', ''), 10, s.created, s.created + interval '45 seconds',
       CASE WHEN s.state = 'ended' THEN s.created + interval '10 seconds' END,
       CASE WHEN s.state = 'ended' THEN s.created + make_interval(secs => 70 + mod(s.g, 1200))
            ELSE s.created + interval '45 seconds' END,
       CASE s.state WHEN 'ended' THEN 'hangup' WHEN 'missed' THEN 'no_answer' ELSE s.state END
FROM (SELECT g, ('{HISTORY_PREFIX}' || lpad(to_hex(g), 12, '0'))::uuid AS id,
             ('{FAN_PREFIX}' || lpad(to_hex(1 + mod(g, %(fans)s)), 12, '0'))::uuid AS fan,
             ('{CREATOR_PREFIX}' || lpad(to_hex(1 + mod(g / 7, %(creators)s)), 12, '0'))::uuid AS creator,
             CASE WHEN mod(g, 10) < 8 THEN 'ended' WHEN mod(g, 10) = 8 THEN 'missed'
                  WHEN mod(g, 20) = 9 THEN 'declined' ELSE 'cancelled' END AS state,
             timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => g * 3) AS created
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g) s
"""


def _active(conn: psycopg.Connection, plan: SeedPlan) -> None:
    _say(f"{plan.active:,} active calls (fan i with creator i), nothing billed yet")
    conn.execute(
        """INSERT INTO call_sessions (id, fan_id, creator_id, initiated_by, call_type, state, channel,
                                      rate_per_minute, created_at, ring_expires_at, connected_at,
                                      last_billed_minute, total_cost, fan_last_seen_at, creator_last_seen_at)
           SELECT s.id, s.fan, s.creator, s.fan, 'video', 'active', 'call-' || replace(s.id::text, '-', ''),
                  %(rate)s, now() - interval '1 minute', now() - interval '15 seconds', now() - interval '50 seconds',
                  0, 0, now(), now()
           FROM (SELECT (%(a)s || lpad(to_hex(i), 12, '0'))::uuid AS id,
                        (%(f)s || lpad(to_hex(i), 12, '0'))::uuid AS fan,
                        (%(c)s || lpad(to_hex(i), 12, '0'))::uuid AS creator
                 FROM generate_series(1, %(n)s) i) s""",
        {"a": ACTIVE_PREFIX, "f": FAN_PREFIX, "c": CREATOR_PREFIX, "rate": plan.rate, "n": plan.active},
    )


def active_ids(conn: psycopg.Connection) -> list[UUID]:
    """The seeded active calls that are still active, by number."""
    rows = conn.execute(
        "SELECT id FROM call_sessions WHERE state = 'active' AND starts_with(id::text, 'a0000000-') ORDER BY id"
    ).fetchall()
    return [r[0] for r in rows]


def check_active(database: str, plan: SeedPlan) -> int:
    """How many seeded calls are active (every one should be; a crashed run may have ended some)."""
    with psycopg.connect(stack.database_url(database), row_factory=dict_row) as conn:
        row = conn.execute("SELECT count(*) AS n FROM call_sessions WHERE state = 'active'").fetchone()
        return int(row["n"]) if row else 0

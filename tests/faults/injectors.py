"""Faults the state machine injects into the real stack: a COMMIT that fails, and an instance that dies after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from lib import db
from tests.conftest import TEST_ENV

# The tables every money or call operation writes: a transaction touching any of them fails at COMMIT when armed.
FAULT_TABLES = (
    "token_transactions",
    "idempotency_keys",
    "stripe_events",
    "call_sessions",
    "job_deliveries",
    "tips",
)


def install_commit_fault(conn: psycopg.Connection[Any]) -> None:
    """A deferred trigger on the tables every operation writes: when armed, COMMIT fails like a lost connection."""
    conn.execute("CREATE TABLE IF NOT EXISTS fault_plan (armed boolean NOT NULL)")
    conn.execute(
        """CREATE OR REPLACE FUNCTION fault_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               IF EXISTS (SELECT 1 FROM fault_plan WHERE armed) THEN
                   RAISE EXCEPTION 'injected: connection lost at commit' USING ERRCODE = '08006';
               END IF;
               RETURN NULL;
           END $$"""
    )
    for table in FAULT_TABLES:
        conn.execute(f"DROP TRIGGER IF EXISTS fault_fail_at_commit ON {table}")
        conn.execute(
            f"""CREATE CONSTRAINT TRIGGER fault_fail_at_commit AFTER INSERT OR UPDATE ON {table}
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_fail_at_commit()"""
        )


def remove_commit_fault(conn: psycopg.Connection[Any]) -> None:
    """Drop what install_commit_fault created."""
    for table in FAULT_TABLES:
        conn.execute(f"DROP TRIGGER IF EXISTS fault_fail_at_commit ON {table}")
    conn.execute("DROP FUNCTION IF EXISTS fault_fail_at_commit()")
    conn.execute("DROP TABLE IF EXISTS fault_plan")


@contextmanager
def failing_commit() -> Iterator[None]:
    """Every transaction that writes a faulted table fails at COMMIT while the block runs."""
    with psycopg.connect(TEST_ENV["DATABASE_URL"], autocommit=True) as admin:
        admin.execute("INSERT INTO fault_plan VALUES (true)")
        try:
            yield
        finally:
            admin.execute("DELETE FROM fault_plan")


@contextmanager
def crash_after_commit() -> Iterator[None]:
    """The instance dies right after the commit: no after-commit callback (Pusher, next job, stats) runs."""
    original = db.run_callbacks
    db.run_callbacks = lambda callbacks: None
    try:
        yield
    finally:
        db.run_callbacks = original

"""PostgreSQL: a small pool per warm instance, one transaction per request.

A transaction costs two round trips of its own: `BEGIN; SET LOCAL statement_timeout = N` as one simple query
(psycopg's own BEGIN and a `set_config` would be two, and the pool's hand-out check a third) and the COMMIT. The
pool's connections are in autocommit mode so psycopg sends no BEGIN of its own; `conn.transaction()` inside a
request is a savepoint, as before. A connection found dead by that BEGIN (the database restarted) is discarded with
every other dead idle one, and the BEGIN is tried once on a fresh connection: nothing has run yet, so it is safe.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import BackgroundTasks, Depends
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from lib import config
from lib.config import get_settings, settings_cached
from lib.errors import ServiceUnavailable

log = logging.getLogger("digis.db")

Conn = psycopg.Connection[DictRow]
AfterCommit = Callable[[], object]

_after_commit: weakref.WeakKeyDictionary[Conn, list[AfterCommit]] = weakref.WeakKeyDictionary()
_pool_lock = threading.Lock()


@settings_cached
def get_pool() -> ConnectionPool[Conn]:
    """The instance's pool: small, opened lazily, sized for concurrent requests on one warm function."""
    s = get_settings()
    pool: ConnectionPool[Conn] = ConnectionPool(
        s.database_url,
        min_size=s.db_pool_min,
        max_size=s.db_pool_max,
        timeout=s.db_pool_timeout_s,
        max_idle=60,
        # Supabase's pooler in transaction mode cannot keep prepared statements across transactions.
        kwargs={
            "prepare_threshold": None,
            "connect_timeout": s.db_connect_timeout_s,
            "row_factory": dict_row,
            "application_name": "digis-api",
            "autocommit": True,  # transactions are begun by `_connection`, with their timeout in the same trip
        },
        open=False,
        name="digis",
    )
    with _pool_lock:
        pool.open(wait=False)
    return pool


def close_pool() -> None:
    """Close the pool (tests and scripts)."""
    if get_pool.cache_info().currsize:  # type: ignore[attr-defined]
        get_pool().close()
        get_pool.cache_clear()  # type: ignore[attr-defined]


config.on_reset(close_pool)


def after_commit(conn: Conn, fn: AfterCommit) -> None:
    """Run `fn` once the transaction on `conn` has committed (never if it rolls back)."""
    _after_commit.setdefault(conn, []).append(fn)


def _take_after_commit(conn: Conn) -> list[AfterCommit]:
    return _after_commit.pop(conn, [])


def run_callbacks(callbacks: list[AfterCommit]) -> None:
    """Run after-commit callbacks; one failing never stops the others."""
    for fn in callbacks:
        try:
            fn()
        except Exception:
            log.exception("after-commit callback failed")


@contextmanager
def transaction(*, statement_timeout_ms: int | None = None) -> Iterator[Conn]:
    """A pooled connection in one transaction: commit on success, roll back on error."""
    callbacks: list[AfterCommit] = []
    with _connection(statement_timeout_ms) as conn:
        try:
            yield conn
        finally:
            callbacks = _take_after_commit(conn)
        # Only reached when the commit succeeded.
    run_callbacks(callbacks)


@contextmanager
def _connection(statement_timeout_ms: int | None) -> Iterator[Conn]:
    """A pooled connection in one transaction (with the statement timeout): commit on success, else roll back."""
    pool = get_pool()
    try:
        conn = pool.getconn()
        try:
            _begin(conn, statement_timeout_ms)
        except psycopg.OperationalError:
            # A dead connection (a database restart): drop every dead idle one now, else the next requests find
            # them one by one; then once more on a fresh connection.
            pool.putconn(conn)
            pool.check()
            conn = pool.getconn()
            _begin(conn, statement_timeout_ms)
        try:
            yield conn
        except BaseException:
            _roll_back_quietly(conn)
            raise
        else:
            conn.commit()
        finally:
            pool.putconn(conn)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        raise ServiceUnavailable(
            "The database is unavailable; try again shortly.", code="DB_UNAVAILABLE"
        ) from exc


def _begin(conn: Conn, ms: int | None) -> None:
    timeout = int(ms if ms is not None else get_settings().db_statement_timeout_ms)
    # One simple query, one round trip (no bind parameters: SET LOCAL takes none; `timeout` is an int).
    conn.execute(f"BEGIN; SET LOCAL statement_timeout = {timeout}".encode())


def _roll_back_quietly(conn: Conn) -> None:
    try:
        conn.rollback()
    except (
        psycopg.Error
    ) as exc:  # the original error matters, not the failed rollback (psycopg does the same)
        log.warning("rollback failed: %s", type(exc).__name__)


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def _request_slot() -> AsyncIterator[None]:
    """Wait on the event loop, not in a worker thread, until a pooled connection can be free for this request.

    Without it, requests waiting for a connection fill the thread pool while the requests holding connections
    (and row locks) wait for a thread to finish on: a warm instance under concurrency starves itself into 503s.
    """
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(get_settings().db_pool_max)
    try:
        await asyncio.wait_for(slot.acquire(), timeout=get_settings().db_pool_timeout_s)
    except TimeoutError as exc:
        raise ServiceUnavailable("The database is busy; try again shortly.", code="DB_UNAVAILABLE") from exc
    try:
        yield
    finally:
        slot.release()


def request_transaction(
    background: BackgroundTasks, _slot: Annotated[None, Depends(_request_slot, scope="function")]
) -> Iterator[Conn]:
    """FastAPI dependency: the request's transaction, committed before the response is sent."""
    with _connection(None) as conn:
        try:
            yield conn
        except BaseException:
            _take_after_commit(conn)
            raise
        callbacks = _take_after_commit(conn)
    if callbacks:
        # After the commit and after the response: realtime fan-out and job publishing never delay it.
        background.add_task(run_callbacks, callbacks)


DbConn = Annotated[Conn, Depends(request_transaction, scope="function")]


def ping(timeout_s: float = 2.0) -> bool:
    """True when the database answers within `timeout_s` (a dead pooled connection is dropped and tried anew)."""
    for attempt in range(2):
        try:
            with get_pool().connection(timeout=timeout_s) as conn:
                conn.execute("SELECT 1")
            return True
        except PoolTimeout:
            return False
        except psycopg.OperationalError:
            if attempt == 0:
                get_pool().check()  # the database restarted: drop the dead idle connections, ask once more
        except Exception:
            return False
    return False


def fetch_one(conn: Conn, query: Any, params: dict[str, Any] | None = None) -> DictRow | None:
    """One row or None."""
    return conn.execute(query, params).fetchone()


def fetch_all(conn: Conn, query: Any, params: dict[str, Any] | None = None) -> list[DictRow]:
    """All rows."""
    return conn.execute(query, params).fetchall()

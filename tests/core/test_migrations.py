"""scripts/migrate: ordered, recorded, idempotent, refuses edited history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from lib import migrate
from tests.conftest import ADMIN_URL


@pytest.fixture
def empty_db() -> Iterator[str]:
    name = f"digis_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(ADMIN_URL, dbname=name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_apply_to_empty_database_then_noop(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        applied = migrate.apply(conn)
        assert applied == [m.version for m in migrate.discover()]
        assert "0001" in applied
        assert migrate.apply(conn) == []
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert {"users", "token_transactions", "payments", "call_sessions", "schema_migrations"} <= tables


def test_edited_applied_migration_is_refused(empty_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id int);")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert migrate.apply(conn, tmp_path) == ["0001"]
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id bigint);")
        with pytest.raises(migrate.MigrationError, match="edited"):
            migrate.apply(conn, tmp_path)


def test_failed_migration_leaves_nothing_half_applied(empty_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            migrate.apply(conn, tmp_path)
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert "ok" in tables and "half" not in tables
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == ["0001"]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(migrate.MigrationError):
        migrate.discover(tmp_path)

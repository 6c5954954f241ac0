"""Forward-only SQL migrations: applied in order, recorded with a checksum, under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x6469676973  # "digis": one migrator at a time across deploys

log = logging.getLogger("digis.migrate")


class MigrationError(Exception):
    """An applied migration was edited, or a file is malformed."""


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, ordered by their number."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit() or not name:
            raise MigrationError(f"{path.name}: name migrations NNNN_slug.sql")
        found.append(Migration(version, name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


def apply(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations on an autocommit connection; returns the versions applied."""
    migrations = discover(directory)
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        applied = {row[0]: row[1] for row in rows}
        done = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version}_{m.name}.sql was edited after it was applied; "
                        "migrations are forward-only: add a new file instead"
                    )
                continue
            with conn.transaction():
                conn.execute(m.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (m.version, m.name, m.checksum),
                )
            log.info("applied migration %s_%s", m.version, m.name)
            done.append(m.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist (local development and tests)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname") or "")
    if not name:
        return
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def main(argv: list[str]) -> int:
    """`python -m lib.migrate [--create]`: apply migrations to DATABASE_URL."""
    from lib.config import get_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    url = get_settings().database_url
    if "--create" in argv:
        ensure_database(url)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            done = apply(conn)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    print(f"migrations: {len(done)} applied" + (f" ({', '.join(done)})" if done else ", schema up to date"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

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

# Run in each migration's transaction: every relation in `public` is private to Supabase's browser roles unless a
# policy deliberately exposes it. RLS is on for every table (no policy: no rows). A browser role that no policy of a
# table names gets no privilege on it at all; one that a policy names never gets TRUNCATE, REFERENCES or TRIGGER
# (RLS does not apply to TRUNCATE). Sequences, views and functions in `public` are never theirs. Without the roles
# (plain PostgreSQL) only the RLS part applies.
_PRIVATE_BY_DEFAULT = """
DO $lockdown$
DECLARE
    rel regclass;
    fn regprocedure;
    api_role name;
    api_roles name[] := ARRAY(SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated'));
BEGIN
    FOR rel IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
                 AND pg_has_role(c.relowner, 'USAGE') LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel);
    END LOOP;
    FOREACH api_role IN ARRAY api_roles LOOP
        FOR rel IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                     AND pg_has_role(c.relowner, 'USAGE') LOOP
            IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = rel
                       AND (0::oid = ANY (p.polroles) OR (SELECT oid FROM pg_roles WHERE rolname = api_role)
                            = ANY (p.polroles))) THEN
                EXECUTE format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON %s FROM %I', rel, api_role);
            ELSE
                EXECUTE format('REVOKE ALL ON %s FROM %I', rel, api_role);
            END IF;
        END LOOP;
    END LOOP;
    FOR fn IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND pg_has_role(p.proowner, 'USAGE')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC', fn);
        FOREACH api_role IN ARRAY api_roles LOOP
            EXECUTE format('REVOKE ALL ON ROUTINE %s FROM %I', fn, api_role);
        END LOOP;
    END LOOP;
END
$lockdown$
"""


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
                conn.execute(_PRIVATE_BY_DEFAULT)
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

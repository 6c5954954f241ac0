"""On a database set up like Supabase's, the browser roles reach nothing but the avatar columns of their own row.

Supabase grants `anon` and `authenticated` ALL on every table, sequence and function created in `public` (default
privileges) and exposes `public` through its Data API. The database here is given the same roles, `auth.uid()` and
default privileges BEFORE the migrations run; then every table the migrations created, found in the catalog, is
attacked as `anon` and as a signed-in user.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from lib import migrate
from tests.conftest import ADMIN_URL

API_ROLES = ("anon", "authenticated")

# What Supabase sets up before any project migration (roles, auth.uid() reading the request's JWT claims as
# PostgREST sets them, usage on public, and the default privileges of the migrating role).
_PLAY_SUPABASE = """
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE SET search_path = '' AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


def _ensure_roles() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name, extra in (("anon", ""), ("authenticated", ""), ("service_role", " BYPASSRLS")):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateObject):  # another worker was first
                    conn.execute(
                        sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT" + extra).format(sql.Identifier(name))
                    )


@pytest.fixture(scope="module")
def supabase_db() -> Iterator[str]:
    """A fresh database that plays Supabase, with every migration applied on top."""
    _ensure_roles()
    name = f"digis_supa_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(ADMIN_URL, dbname=name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_PLAY_SUPABASE)
            migrate.apply(conn)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def owner(supabase_db: str) -> Iterator[psycopg.Connection]:
    """The API's own connection (the tables' owner), in a transaction rolled back after the test."""
    with psycopg.connect(supabase_db) as conn:
        yield conn
        conn.rollback()


def _two_users(conn: psycopg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    me, other = uuid.uuid4(), uuid.uuid4()
    for uid in (me, other):
        conn.execute(
            "INSERT INTO users (id, username, email, token_balance) VALUES (%s, %s, %s, 100)",
            (uid, f"u_{uid.hex[:12]}", f"{uid.hex[:8]}@example.com"),
        )
    return me, other


def _act_as(conn: psycopg.Connection, role: str, user_id: uuid.UUID | None = None) -> None:
    """Become a browser role the way PostgREST does: SET ROLE plus the request's JWT claims."""
    claims = {"role": role} | ({"sub": str(user_id)} if user_id else {})
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))


def _tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _first_column(conn: psycopg.Connection, table: str) -> str:
    row = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND attgenerated = '' AND attidentity = '' ORDER BY attnum LIMIT 1",
        (f'public."{table}"',),
    ).fetchone()
    assert row is not None
    return str(row[0])


def _attempts(table: str, column: str) -> dict[str, sql.Composed]:
    t, c = sql.Identifier("public", table), sql.Identifier(column)
    return {
        "select": sql.SQL("SELECT * FROM {}").format(t),
        "insert": sql.SQL("INSERT INTO {} DEFAULT VALUES").format(t),
        "update": sql.SQL("UPDATE {} SET {} = {}").format(t, c, c),
        "delete": sql.SQL("DELETE FROM {}").format(t),
        "truncate": sql.SQL("TRUNCATE {} CASCADE").format(t),
    }


def _refused(conn: psycopg.Connection, statement: sql.Composed) -> bool:
    """True when PostgreSQL refuses the statement for lack of privilege."""
    conn.execute("SAVEPOINT attempt")
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        refused = True
    except psycopg.Error:  # past the privilege check (a constraint, a trigger): the role got that far
        refused = False
    else:
        refused = False
    conn.execute("ROLLBACK TO SAVEPOINT attempt")
    return refused


def test_every_table_the_migrations_created_is_covered(owner: psycopg.Connection) -> None:
    tables = _tables(owner)
    # The catalog drives the checks below: a table added by a later migration is attacked without editing this file.
    assert {"users", "token_transactions", "payments", "schema_migrations", "payouts"} <= set(tables)
    assert [t for t in tables if not _rls_on(owner, t)] == []


def _rls_on(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (f'public."{table}"',))
    return bool(row.fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("role", API_ROLES)
def test_browser_roles_are_refused_every_statement_on_every_table(
    owner: psycopg.Connection, role: str
) -> None:
    me, _ = _two_users(owner)
    allowed = []
    for table in _tables(owner):
        attempts = _attempts(table, _first_column(owner, table))
        _act_as(owner, role, me if role == "authenticated" else None)
        for verb, statement in attempts.items():
            if role == "authenticated" and table == "users" and verb == "update":
                continue  # the avatar columns: checked on their own below
            if not _refused(owner, statement):
                allowed.append(f"{verb} {table}")
        owner.execute("RESET ROLE")
    assert allowed == []


@pytest.mark.parametrize("role", API_ROLES)
def test_browser_roles_cannot_use_sequences_or_functions(owner: psycopg.Connection, role: str) -> None:
    rows = owner.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'S'"
    ).fetchall()
    assert rows, "the schema has sequences (users_agora_uid_seq at least)"
    usable = [
        r[0]
        for r in rows
        if owner.execute(
            "SELECT has_sequence_privilege(%s, %s, 'USAGE,SELECT,UPDATE')", (role, r[0])
        ).fetchone()
        != (False,)
    ]
    functions = owner.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND has_function_privilege(%s, p.oid, 'EXECUTE')",
        (role,),
    ).fetchall()
    assert usable == [] and functions == []


def test_signed_in_user_updates_only_their_own_avatar(owner: psycopg.Connection) -> None:
    me, other = _two_users(owner)
    _act_as(owner, "authenticated", me)
    # Exactly what AvatarUpload.js sends through supabase-js: PATCH users?supabase_id=eq.<uid>.
    url = "https://project.supabase.co/storage/v1/object/public/user-avatars/avatars/me.jpg"
    cur = owner.execute(
        "UPDATE public.users SET profile_pic_url = %s, updated_at = %s WHERE supabase_id = %s",
        (url, "2026-12-04T12:00:00Z", me),
    )
    assert cur.rowcount == 1
    cur = owner.execute("UPDATE public.users SET profile_pic_url = %s WHERE supabase_id = %s", (url, other))
    assert cur.rowcount == 0  # someone else's row is invisible
    assert owner.execute("SELECT supabase_id FROM public.users").fetchall() == [(me,)]
    for column, value in (
        ("token_balance", 10**9),
        ("role", "admin"),
        ("video_price", 1),
        ("username", "x_x_x"),
    ):
        statement = sql.SQL("UPDATE public.users SET {} = %s WHERE supabase_id = %s").format(
            sql.Identifier(column)
        )
        owner.execute("SAVEPOINT attempt")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute(statement, (value, me))
        owner.execute("ROLLBACK TO SAVEPOINT attempt")
    owner.execute("SAVEPOINT attempt")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        owner.execute("SELECT email, token_balance FROM public.users")
    owner.execute("ROLLBACK TO SAVEPOINT attempt")
    owner.execute("SAVEPOINT attempt")
    with pytest.raises(psycopg.errors.CheckViolation):
        owner.execute(
            "UPDATE public.users SET profile_pic_url = 'javascript:alert(1)' WHERE supabase_id = %s", (me,)
        )
    owner.execute("ROLLBACK TO SAVEPOINT attempt")
    owner.execute("RESET ROLE")
    pics = dict(
        owner.execute("SELECT id, profile_pic_url FROM users WHERE id IN (%s, %s)", (me, other)).fetchall()
    )
    assert pics == {me: url, other: None}


def test_anon_cannot_update_any_avatar(owner: psycopg.Connection) -> None:
    me, _ = _two_users(owner)
    _act_as(owner, "anon")
    assert _refused(
        owner, sql.SQL("UPDATE public.users SET profile_pic_url = NULL WHERE supabase_id = {}").format(me)
    )


def test_a_later_migration_that_forgets_rls_is_still_private(supabase_db: str, tmp_path: Path) -> None:
    for m in migrate.discover():
        (tmp_path / f"{m.version}_{m.name}.sql").write_text(m.sql)
    (tmp_path / "9999_forgetful.sql").write_text(
        "CREATE TABLE forgetful (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, secret text);"
        "CREATE VIEW forgetful_view AS SELECT * FROM forgetful;"
        "CREATE FUNCTION forgetful_fn() RETURNS int LANGUAGE sql SET search_path = '' AS 'SELECT 1';"
    )
    with psycopg.connect(supabase_db, autocommit=True) as conn:
        try:
            assert migrate.apply(conn, tmp_path) == ["9999"]
            assert _rls_on(conn, "forgetful")
            for role in API_ROLES:
                grants = conn.execute(
                    "SELECT has_table_privilege(%(r)s, 'forgetful', 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE'),"
                    " has_table_privilege(%(r)s, 'forgetful_view', 'SELECT'),"
                    " has_function_privilege(%(r)s, 'forgetful_fn()', 'EXECUTE')",
                    {"r": role},
                ).fetchone()
                assert grants == (False, False, False)
        finally:
            conn.execute("DROP VIEW IF EXISTS forgetful_view; DROP TABLE IF EXISTS forgetful;")
            conn.execute(
                "DROP FUNCTION IF EXISTS forgetful_fn(); DELETE FROM schema_migrations WHERE version = '9999'"
            )


# The security lints of Supabase's advisor that apply to this schema, written as queries that must find nothing.
_ADVISOR_CHECKS = {
    "rls disabled on a table in public": """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity""",
    "policy on a table without RLS": """
        SELECT DISTINCT c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE NOT c.relrowsecurity""",
    "function with a mutable search_path": """
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
          AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) cfg WHERE cfg LIKE 'search_path=%')""",
    "policy calling auth.uid() once per row": """
        SELECT polname FROM pg_policy
        WHERE regexp_replace(coalesce(pg_get_expr(polqual, polrelid), '') || coalesce(pg_get_expr(polwithcheck,
              polrelid), ''), '\\(\\s*SELECT\\s+auth\\.uid\\(\\)', '', 'gi') ~* 'auth\\.(uid|jwt|role)\\(\\)'""",
    "more than one permissive policy per role and action": """
        SELECT c.relname, r.rolname, p.polcmd FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        CROSS JOIN LATERAL unnest(p.polroles) AS pr(oid) JOIN pg_roles r ON r.oid = pr.oid
        WHERE p.polpermissive GROUP BY 1, 2, 3 HAVING count(*) > 1""",
    "view in public running with its owner's rights": """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'v'
          AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)""",
    "extension installed in public": """
        SELECT e.extname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = 'public'""",
    "security definer function executable by a browser role": """
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prosecdef
          AND (has_function_privilege('anon', p.oid, 'EXECUTE')
               OR has_function_privilege('authenticated', p.oid, 'EXECUTE'))""",
}


@pytest.mark.parametrize("check", sorted(_ADVISOR_CHECKS))
def test_advisor_security_lints_find_nothing(owner: psycopg.Connection, check: str) -> None:
    assert owner.execute(_ADVISOR_CHECKS[check]).fetchall() == []


def test_an_exposed_table_is_what_the_lints_catch(owner: psycopg.Connection) -> None:
    """The checks above can fail: an unprotected table and a per-row policy are found."""
    owner.execute(
        "CREATE TABLE public.exposed (id int); ALTER TABLE public.exposed DISABLE ROW LEVEL SECURITY"
    )
    owner.execute("CREATE POLICY per_row ON public.users FOR DELETE TO authenticated USING (id = auth.uid())")
    assert owner.execute(_ADVISOR_CHECKS["rls disabled on a table in public"]).fetchall() == [("exposed",)]
    assert owner.execute(_ADVISOR_CHECKS["policy calling auth.uid() once per row"]).fetchall() == [
        ("per_row",)
    ]

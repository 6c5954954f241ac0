"""One transaction per request: committed before the response, rolled back on error, hooks after commit."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from lib import db
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.errors import Conflict
from lib.http import create_app
from tests.conftest import MakeUser


@pytest.fixture
def scratch(clean: None) -> Iterator[None]:
    with db.transaction() as conn:
        conn.execute("DROP TABLE IF EXISTS scratch")
        conn.execute(
            """CREATE TABLE scratch (id int PRIMARY KEY, ref int,
                   CONSTRAINT scratch_ref_fk FOREIGN KEY (ref) REFERENCES scratch (id) DEFERRABLE INITIALLY DEFERRED)"""
        )
    yield
    with db.transaction() as conn:
        conn.execute("DROP TABLE IF EXISTS scratch")


def _rows() -> list[int]:
    with db.transaction() as conn:
        return [r["id"] for r in conn.execute("SELECT id FROM scratch ORDER BY id")]


fired: list[str] = []


def _app() -> TestClient:
    app = create_app(rate_limit=None)

    @app.post("/api/scratch/{n}")
    def write(n: int, conn: DbConn) -> dict[str, object]:
        ref = n + 1000 if n % 2 else None  # odd n: a foreign key that only fails at COMMIT
        conn.execute("INSERT INTO scratch (id, ref) VALUES (%(n)s, %(r)s)", {"n": n, "r": ref})
        db.after_commit(conn, lambda: fired.append(f"committed {n}"))
        if n == 42:
            raise Conflict("refused after writing")
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        return {"ok": True, "timeout": timeout["statement_timeout"] if timeout else None}

    @app.get("/api/me")
    def me(user: CurrentUser) -> dict[str, str]:
        return {"id": str(user.id)}

    return TestClient(app, raise_server_exceptions=False)


def test_commit_happens_before_the_response(scratch: None) -> None:
    fired.clear()
    c = _app()
    ok = c.post("/api/scratch/2")
    assert ok.status_code == 200 and ok.json()["timeout"] == "5s"
    assert fired == ["committed 2"]
    # The deferred constraint fails at COMMIT: the client must not see a success.
    bad = c.post("/api/scratch/3")
    assert bad.status_code >= 400, bad.text
    assert _rows() == [2]
    assert fired == ["committed 2"]


def test_error_rolls_back_and_skips_after_commit(scratch: None) -> None:
    fired.clear()
    r = _app().post("/api/scratch/42")
    assert r.status_code == 409
    assert _rows() == []
    assert fired == []


def test_transaction_context_runs_hooks_only_on_commit(scratch: None) -> None:
    seen: list[int] = []
    with db.transaction() as conn:
        conn.execute("INSERT INTO scratch (id) VALUES (10)")
        db.after_commit(conn, lambda: seen.append(10))
    with pytest.raises(psycopg.errors.UniqueViolation), db.transaction() as conn:
        db.after_commit(conn, lambda: seen.append(11))
        conn.execute("INSERT INTO scratch (id) VALUES (10)")
    assert seen == [10]


def test_first_request_creates_the_user_row(make_user: MakeUser) -> None:
    from uuid import uuid4

    from tests.support.tokens import bearer, make_token

    uid = uuid4()
    r = _app().get("/api/me", headers=bearer(make_token(uid, email="New.Person+x@Example.com")))
    assert r.status_code == 200 and r.json() == {"id": str(uid)}
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT username, role, token_balance FROM users WHERE id = %(i)s", {"i": uid}
        ).fetchone()
    assert row == {"username": "new_person_x", "role": "fan", "token_balance": 0}

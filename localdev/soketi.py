"""soketi, the Pusher-compatible server, as the local Pusher: `python -m localdev.soketi --port 6001`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

NODE_DIR = Path(__file__).resolve().parent / "node"
SERVER_JS = NODE_DIR / "node_modules" / "@soketi" / "soketi" / "bin" / "server.js"
HOST = "127.0.0.1"
DEFAULT_PORT = 6001
DEFAULT_APP_ID = "1000001"
DEFAULT_KEY = "digis-local-key"
DEFAULT_SECRET = "digis-local-secret"
EXIT_UNAVAILABLE = 3  # node or the npm package is missing: callers fail (tests) or warn (scripts/dev)
# Hosted Pusher's limits, so local runs refuse what production would.
MAX_PAYLOAD_KB = 10
MAX_BATCH_SIZE = 10
# What soketi 1.6 can send as webhooks (signed like Pusher's: X-Pusher-Key, X-Pusher-Signature = hex HMAC-SHA256
# of the body with the app secret). Hosted Pusher's `subscription_count` event is not among them.
WEBHOOK_EVENTS = ("channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event")
STREAM_WEBHOOK_EVENTS = ("channel_occupied", "channel_vacated")


class SoketiUnavailable(RuntimeError):
    """node or the installed soketi package is missing."""


class SoketiFailed(RuntimeError):
    """soketi did not come up (or did not come up alone on its port)."""


@dataclass(frozen=True)
class Soketi:
    """A running soketi: where it listens and the one app it serves."""

    host: str
    port: int
    app_id: str
    key: str
    secret: str

    @property
    def url(self) -> str:
        """The Pusher HTTP API base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The websocket URL a Pusher client connects to."""
        return f"ws://{self.host}:{self.port}/app/{self.key}?protocol=7"


def node_binary() -> str | None:
    """Path of `node`, or None."""
    return shutil.which("node")


def is_installed() -> bool:
    """True when node and the soketi package are both present."""
    return node_binary() is not None and SERVER_JS.is_file()


def ensure_installed(*, timeout_s: float = 900) -> bool:
    """Run `npm install` in localdev/node when soketi is missing from node_modules; True when soketi can run."""
    if is_installed():
        return True
    npm = shutil.which("npm")
    if npm is None or node_binary() is None:
        return False
    # Missing or partial node_modules alike: npm install is idempotent.
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=False,
            timeout=timeout_s,
            stdout=2,  # fd 2: keep the caller's stdout for its own "ready" line
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"npm install failed: {exc}", file=sys.stderr)
        return False
    return is_installed()


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port the kernel just handed out on 127.0.0.1 (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (a bind without SO_REUSEPORT would succeed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: closed connections in TIME_WAIT don't make a port busy; a listener still does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def stream_webhook(url: str) -> dict[str, Any]:
    """A soketi webhook posting stream channels' occupied/vacated events to `url` (the API's /webhooks/pusher)."""
    return {
        "url": url,
        "event_types": list(STREAM_WEBHOOK_EVENTS),
        "filter": {"channel_name_starts_with": "private-stream-"},
    }


def write_config(
    directory: Path,
    *,
    port: int,
    metrics_port: int,
    cluster_port: int,
    app_id: str,
    key: str,
    secret: str,
    webhooks: list[dict[str, Any]] | None = None,
) -> Path:
    """Write soketi's JSON config: everything on 127.0.0.1, one app, hosted Pusher's limits, its webhooks."""
    if not app_id.isdigit():
        raise ValueError("the Pusher app id must be numeric (the Python SDK refuses others)")
    for hook in webhooks or []:
        unknown = set(hook.get("event_types", [])) - set(WEBHOOK_EVENTS)
        if unknown:
            raise ValueError(f"soketi 1.6 cannot send {sorted(unknown)} webhooks")
    app = {
        "id": app_id,
        "key": key,
        "secret": secret,
        "enabled": True,
        "enableClientMessages": False,
        "maxConnections": -1,
        "maxEventPayloadInKb": MAX_PAYLOAD_KB,
        "maxEventBatchSize": MAX_BATCH_SIZE,
        "webhooks": webhooks or [],
    }
    config: dict[str, Any] = {
        "host": HOST,
        "port": port,
        # Without these soketi listens on every interface and broadcasts UDP discovery to the LAN.
        "cluster.address": HOST,
        "cluster.hostname": HOST,
        "cluster.port": cluster_port,
        "cluster.unicast": f"{HOST}:{cluster_port}",
        "metrics.host": HOST,
        "metrics.port": metrics_port,
        "shutdownGracePeriod": 0,
        "eventLimits.maxPayloadInKb": MAX_PAYLOAD_KB,
        "eventLimits.maxBatchSize": MAX_BATCH_SIZE,
        "appManager.driver": "array",
        "appManager.array.apps": [app],
    }
    path = directory / "soketi.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP 127.0.0.1:port, from /proc/net/tcp (Linux)."""
    wanted = f"0100007F:{port:04X}"
    inodes: set[str] = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # 0A = LISTEN
                inodes.add(fields[9])
    return inodes


def _owned_inodes(pid: int) -> set[str]:
    """Socket inodes held open by `pid`."""
    owned: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                owned.add(target[8:-1])
    return owned


def listens_alone(pid: int, port: int) -> bool:
    """True unless another process also listens on the port (uWebSockets sets SO_REUSEPORT: no bind error)."""
    if not Path("/proc/net/tcp").exists():
        return True  # not Linux: the pre-start bind check is all we have
    try:
        listening = _listening_inodes(port)
        return bool(listening) and listening <= _owned_inodes(pid)
    except OSError:
        return True


def answers(port: int, timeout_s: float = 0.5) -> bool:
    """True when soketi's health check on the port answers OK."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ready", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class SoketiProcess:
    """One soketi node process with its temp dir and log file."""

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        app_id: str = DEFAULT_APP_ID,
        key: str = DEFAULT_KEY,
        secret: str = DEFAULT_SECRET,
        webhooks: list[dict[str, Any]] | None = None,
    ) -> None:
        node = node_binary()
        if node is None:
            raise SoketiUnavailable("node is not on PATH; install Node.js 18+ for the local Pusher")
        if not SERVER_JS.is_file():
            raise SoketiUnavailable(f"soketi is not installed: run `npm install` in {NODE_DIR}")
        self.node = node
        self.handle = Soketi(HOST, port, app_id, key, secret)
        self.webhooks = webhooks or []
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="soketi-")
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """soketi's combined stdout/stderr."""
        return Path(self._tmp.name) / "soketi.log"

    def log_tail(self, chars: int = 2000) -> str:
        """The end of soketi's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, *, ready_timeout_s: float = 15.0) -> Soketi:
        """Start node and wait until soketi answers alone on its port."""
        try:
            return self._start(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, ready_timeout_s: float) -> Soketi:
        h = self.handle
        if not port_is_free(h.port):
            raise SoketiFailed(f"port {h.port} is already in use on {HOST}")
        config = write_config(
            Path(self._tmp.name),
            port=h.port,
            metrics_port=free_port(),
            cluster_port=free_port(socket.SOCK_DGRAM),
            app_id=h.app_id,
            key=h.key,
            secret=h.secret,
            webhooks=self.webhooks,
        )
        # soketi reads SOKETI_* variables and a .env in its cwd over the config; give it neither.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOKETI_")}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [self.node, str(SERVER_JS), "start", f"--config={config}"],
            cwd=self._tmp.name,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SoketiFailed(f"soketi exited with {self.proc.returncode}:\n{self.log_tail()}")
            if answers(h.port, timeout_s=0.5):
                if not listens_alone(self.proc.pid, h.port):
                    raise SoketiFailed(f"another process also listens on {HOST}:{h.port}")
                return h
            time.sleep(0.05)
        raise SoketiFailed(f"soketi did not answer within {ready_timeout_s}s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM node and wait for the pid to exit (the port is reusable only then)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._tmp.cleanup()


@contextlib.contextmanager
def running(
    *,
    port: int = 0,
    app_id: str = DEFAULT_APP_ID,
    key: str = DEFAULT_KEY,
    secret: str = DEFAULT_SECRET,
    ready_timeout_s: float = 15.0,
    attempts: int = 3,
    webhooks: list[dict[str, Any]] | None = None,
) -> Iterator[Soketi]:
    """soketi on a free port (a subprocess) for a test; SoketiUnavailable when node or soketi is missing."""
    last: SoketiFailed | None = None
    for _ in range(attempts if port == 0 else 1):
        server = SoketiProcess(
            port=port or free_port(), app_id=app_id, key=key, secret=secret, webhooks=webhooks
        )
        try:
            handle = server.start(ready_timeout_s=ready_timeout_s)
        except SoketiFailed as exc:
            last = exc  # another run took the port between our check and node's bind: try another
            continue
        try:
            yield handle
        finally:
            server.stop()
        return
    assert last is not None
    raise last


def main(argv: list[str] | None = None) -> int:
    """Run soketi until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--app-id", default=DEFAULT_APP_ID)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--ready-timeout", type=float, default=15.0)
    parser.add_argument(
        "--stream-webhook-url",
        default="",
        help="post stream channels' occupied/vacated webhooks here (e.g. http://127.0.0.1:3000/api/webhooks/pusher)",
    )
    parser.add_argument(
        "--ensure-installed", action="store_true", help="npm install if needed, then exit 0 (ready) or 3"
    )
    args = parser.parse_args(argv)
    if args.ensure_installed:
        return 0 if ensure_installed() else EXIT_UNAVAILABLE

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server = SoketiProcess(
            port=args.port,
            app_id=args.app_id,
            key=args.key,
            secret=args.secret,
            webhooks=[stream_webhook(args.stream_webhook_url)] if args.stream_webhook_url else None,
        )
    except SoketiUnavailable as exc:
        print(f"soketi unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        handle = server.start(ready_timeout_s=args.ready_timeout)
    except (SoketiFailed, ValueError) as exc:
        print(f"soketi failed: {exc}", file=sys.stderr)
        return 1
    print(f"ready {handle.url}", flush=True)
    try:
        while not stop.wait(0.5):
            if server.proc is not None and server.proc.poll() is not None:
                print(f"soketi exited with {server.proc.returncode}:\n{server.log_tail()}", file=sys.stderr)
                return 1
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""localstripe (PyPI) as the local Stripe API, on 127.0.0.1 only: `python -m localdev.stripe_standin --port 8420`.

localstripe pickles its whole store to /tmp/localstripe.pickle after every write, so two instances would read
each other's state; here each instance keeps it in its own file (`--state-file`, else a temp dir removed at exit).
Point stripe-python at it with `StripeClient(key, base_addresses={"api": url})`. Webhooks: `POST
/_config/webhooks/{id}` with `url`, `secret`, `events`; `DELETE /_config/data` flushes the store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DEFAULT_PORT = 8420


def _load_prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


# Resolved once here: between fork and exec a child must not dlopen anything.
_PRCTL = _load_prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so no localstripe outlives it."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def use_state_file(path: Path) -> None:
    """Make localstripe's store load from and save to `path` (atomically) instead of /tmp/localstripe.pickle."""
    from localstripe import resources

    store = resources.store

    def load() -> None:
        try:
            with path.open("rb") as f:
                old = pickle.load(f)  # noqa: S301 - our own state file, written by dump() below
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump() -> None:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    # The Store methods are looked up on the instance first, and server.py imported this same instance.
    setattr(store, "try_load_from_disk", load)  # noqa: B010
    setattr(store, "dump_to_disk", dump)  # noqa: B010


async def serve(sock: socket.socket, *, access_log: bool) -> None:
    """Serve localstripe's app on an already bound socket until SIGTERM/SIGINT."""
    from aiohttp import web
    from localstripe.server import app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger = logging.getLogger("aiohttp.access") if access_log else None
    runner = web.AppRunner(app, access_log=logger)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        print(f"ready http://{HOST}:{sock.getsockname()[1]}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--state-file", type=Path, help="keep the store here between runs (default: a temp dir)"
    )
    parser.add_argument("--from-scratch", action="store_true", help="ignore what the state file holds")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, args.port))
    except OSError as exc:
        print(f"localstripe: cannot bind {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="localstripe-") as tmp:
        state = args.state_file or Path(tmp) / "localstripe.pickle"
        state.parent.mkdir(parents=True, exist_ok=True)
        use_state_file(state)
        if args.state_file is not None and not args.from_scratch:
            from localstripe import resources

            resources.store.try_load_from_disk()
        asyncio.run(serve(sock, access_log=not args.quiet))
    return 0


@dataclass
class LocalStripe:
    """A running localstripe subprocess."""

    url: str
    process: subprocess.Popen[str]

    def flush(self) -> None:
        """Forget every object (DELETE /_config/data)."""
        import httpx

        httpx.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def add_webhook(self, webhook_id: str, url: str, secret: str, events: list[str] | None = None) -> None:
        """Ask localstripe to deliver (signed) events to `url`."""
        import httpx

        data: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            data["events"] = events
        httpx.post(f"{self.url}/_config/webhooks/{webhook_id}", json=data, timeout=5).raise_for_status()


def _read_ready(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The URL from the child's `ready <url>` line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        line = proc.stdout.readline()
        if not line:
            break  # EOF: it exited
        if line.startswith("ready "):
            return line.split(None, 1)[1].strip()
    raise RuntimeError(f"localstripe did not become ready in {timeout_s}s (exit code {proc.poll()})")


@contextlib.contextmanager
def running(*, state_file: Path | None = None, ready_timeout_s: float = 20.0) -> Iterator[LocalStripe]:
    """localstripe on a free port in a subprocess (its store is per-process); `.url`, `.flush()`."""
    cmd = [sys.executable, "-m", "localdev.stripe_standin", "--port", "0", "--quiet"]
    if state_file is not None:
        cmd += ["--state-file", str(state_file)]
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=root,
        preexec_fn=_die_with_parent if _PRCTL is not None else None,
    )
    try:
        try:
            url = _read_ready(proc, ready_timeout_s)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{exc}:\n{log.read()[-2000:]}") from None
        yield LocalStripe(url, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


if __name__ == "__main__":
    sys.exit(main())

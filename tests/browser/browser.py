"""Headless Chromium driven by playwright-core (node) over tests/browser/realtime.html, for pytest."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE.parent.parent / "localdev" / "node"
PLAYWRIGHT = NODE_DIR / "node_modules" / "playwright-core"
PUSHER_JS = NODE_DIR / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"
DRIVER = HERE / "drive.mjs"
CHROMIUM = Path(os.environ.get("DIGIS_CHROMIUM", "/usr/bin/chromium"))
HOST = "127.0.0.1"


def unavailable() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing and could not be installed: run scripts/install-browser (needs apt and root)"
    if shutil.which("node") is None:
        return "node is not on PATH (needed for playwright-core)"
    if not PLAYWRIGHT.is_dir() or not PUSHER_JS.is_file():
        return f"playwright-core / pusher-js missing: run `npm install` in {NODE_DIR}"
    return None


SITE_FILES: dict[str, tuple[Path, str]] = {
    "/realtime.html": (HERE / "realtime.html", "text/html"),
    "/pusher.min.js": (PUSHER_JS, "text/javascript"),
}


class _SiteHandler(BaseHTTPRequestHandler):
    """Only the test page and pusher-js; nothing else on disk is reachable."""

    def do_GET(self) -> None:
        """Serve one of SITE_FILES."""
        entry = SITE_FILES.get(self.path.split("?", 1)[0])
        if entry is None:
            self.send_error(404)
            return
        body = entry[0].read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", f"{entry[1]}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def static_site() -> Iterator[str]:
    """The page and pusher-js on a free port; yields the origin (`http://127.0.0.1:PORT`)."""
    server = ThreadingHTTPServer((HOST, 0), _SiteHandler)
    thread = threading.Thread(target=server.serve_forever, name="browser-site", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class DriverError(AssertionError):
    """The browser said something other than what the test waited for (or nothing in time)."""


@dataclass
class Browser:
    """A running drive.mjs: read its JSON lines with `expect`."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[dict[str, Any] | None]
    stderr: list[str]

    def expect(self, status: str, timeout_s: float) -> dict[str, Any]:
        """The next message, which must have this status."""
        try:
            message = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise DriverError(f"no {status!r} from the browser within {timeout_s}s{self._tail()}") from None
        if message is None:
            raise DriverError(
                f"the browser driver exited ({self.proc.poll()}) before {status!r}{self._tail()}"
            )
        if message.get("status") != status:
            raise DriverError(f"expected {status!r}, the browser said {message}{self._tail()}")
        return message

    def _tail(self) -> str:
        return "\n--- driver stderr ---\n" + "".join(self.stderr[-40:]) if self.stderr else ""


@contextlib.contextmanager
def browser(
    page_url: str, connect: dict[str, Any], *, wait_events: int, timeout_s: float = 30.0
) -> Iterator[Browser]:
    """Launch Chromium on the page, call `digisConnect(connect)`, report `wait_events` events; always cleaned up."""
    user_data = tempfile.mkdtemp(prefix="digis-chromium-")
    config = {
        "pageUrl": page_url,
        "connect": connect,
        "userDataDir": user_data,
        "executablePath": str(CHROMIUM),
        "waitEvents": wait_events,
        "timeoutMs": int(timeout_s * 1000),
    }
    proc = subprocess.Popen(
        ["node", str(DRIVER), json.dumps(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    stderr: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with contextlib.suppress(ValueError):  # a stray non-JSON line is not a message
                lines.put(json.loads(line))
        lines.put(None)

    def read_stderr() -> None:
        assert proc.stderr is not None
        stderr.extend(proc.stderr)

    readers = [threading.Thread(target=fn, daemon=True) for fn in (read_stdout, read_stderr)]
    for reader in readers:
        reader.start()
    try:
        yield Browser(proc, lines, stderr)
    finally:
        if proc.poll() is None:
            proc.terminate()  # node closes Chromium with it
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for reader in readers:
            reader.join(5)
        shutil.rmtree(user_data, ignore_errors=True)

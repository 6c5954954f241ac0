"""Tiny misbehaving servers on 127.0.0.1:0 for fault tests: one that hangs, one that answers a fixed status, and a
Stripe stand-in in front of localstripe that fails on cue and keeps a log of every request it saw."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx

HOST = "127.0.0.1"


class HangingServer:
    """Accepts TCP connections and never reads or answers; counts the connections it accepted."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"hang-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{HOST}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # kept open, never read: the peer waits for its own timeout

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._sock.close()


@contextlib.contextmanager
def hanging() -> Iterator[HangingServer]:
    """A HangingServer for the block."""
    server = HangingServer()
    try:
        yield server
    finally:
        server.close()


def dead_port() -> int:
    """A port nothing listens on (bound, then released: connecting is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Seen:
    """One request a stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    action: str = ""


class _Recording(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((HOST, 0), handler)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()


class _Base(BaseHTTPRequestHandler):
    server: _Recording
    protocol_version = "HTTP/1.1"

    def _record(self) -> Seen:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.server.lock:
            self.server.seen.append(seen)
        return seen

    def _answer(
        self, status: int, body: bytes, content_type: str = "application/json", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet."""


class _FixedStatus(_Base):
    status: ClassVar[int] = 500
    body: ClassVar[bytes] = b'{"error":"injected failure"}'

    def _any(self) -> None:
        self._record()
        self._answer(self.status, self.body)

    do_GET = do_POST = do_PUT = do_DELETE = _any


@dataclass
class RunningServer:
    """A started stand-in: its URL and what it has seen."""

    server: _Recording
    thread: threading.Thread

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{HOST}:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        """The port."""
        return int(self.server.server_address[1])

    @property
    def seen(self) -> list[Seen]:
        """Requests received, in order."""
        with self.server.lock:
            return list(self.server.seen)


@contextlib.contextmanager
def _serve(server: _Recording) -> Iterator[RunningServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningServer(server, thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def answering(status: int, body: dict[str, Any] | None = None) -> Iterator[RunningServer]:
    """A server answering every request with `status` and `body` (JSON)."""
    handler = type(
        "FixedStatus",
        (_FixedStatus,),
        {
            "status": status,
            "body": json.dumps(body if body is not None else {"error": "injected failure"}).encode(),
        },
    )
    with _serve(_Recording(handler)) as running:
        yield running


# --- Stripe ---------------------------------------------------------------------------------------------------


@dataclass
class StripePlan:
    """What the stand-in does with each POST /v1/payment_intents, in order; "pass" once the list runs out.

    - "500": answer 500 without forwarding (Stripe's edge failed before the API ran; nothing was created);
    - "drop": forward, then close the connection without answering (the intent exists; the answer was lost);
    - "pass": forward and answer.
    A forwarded POST's answer is kept under its Idempotency-Key and replayed for a repeat of that key without
    forwarding again, as Stripe's idempotency layer does (localstripe itself ignores the header).
    """

    actions: list[str] = field(default_factory=list)
    upstream: str = ""
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)


class _StripeProxy(_Base):
    plan: ClassVar[StripePlan]

    def _forward(self, seen: Seen) -> tuple[int, bytes]:
        headers = {
            k: v for k, v in seen.headers.items() if k in ("authorization", "content-type", "stripe-version")
        }
        with httpx.Client(timeout=10, trust_env=False) as http:
            r = http.request(seen.method, self.plan.upstream + seen.path, content=seen.body, headers=headers)
        return r.status_code, r.content

    def _any(self) -> None:
        seen = self._record()
        key = seen.headers.get("idempotency-key", "")
        creates_intent = seen.method == "POST" and seen.path.rstrip("/") == "/v1/payment_intents"
        if creates_intent and key and key in self.plan.replies:
            seen.action = "replayed"
            status, body = self.plan.replies[key]
            self._answer(status, body, Idempotent_Replayed="true")
            return
        action = "pass"
        if creates_intent:
            with self.server.lock:
                action = self.plan.actions.pop(0) if self.plan.actions else "pass"
        seen.action = action
        if action == "500":
            self._answer(500, b'{"error":{"type":"api_error","message":"injected 500"}}')
            return
        status, body = self._forward(seen)
        if creates_intent and key and status < 500:
            self.plan.replies[key] = (status, body)
        if action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(status, body)

    do_GET = do_POST = do_DELETE = _any


@contextlib.contextmanager
def stripe_in_front_of(upstream: str, actions: list[str]) -> Iterator[RunningServer]:
    """The Stripe stand-in in front of `upstream` (localstripe), failing PaymentIntent creates as `actions` say."""
    handler = type("StripeProxy", (_StripeProxy,), {"plan": StripePlan(list(actions), upstream.rstrip("/"))})
    with _serve(_Recording(handler)) as running:
        yield running


def intent_creates(seen: list[Seen]) -> list[Seen]:
    """The POST /v1/payment_intents requests in a stand-in's log."""
    return [s for s in seen if s.method == "POST" and s.path.rstrip("/") == "/v1/payment_intents"]


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.02) -> None:
    """Poll `predicate()` until true (bounded); AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"{what} did not happen within {timeout_s}s")

"""A local QStash: publish with delay, not-before and dedup; signed delivery with retries (never deployed).

Speaks what the `qstash` Python SDK (3.4) sends and what `qstash.Receiver` verifies:

    POST   /v2/publish/<destination url>        201 {"messageId"}   (202 {"messageId", "deduplicated": true})
    POST   /v2/enqueue/<queue>/<destination url> same, delivered one at a time per queue
    GET    /v2/messages/<id>                      a pending message (404 once delivered, failed or cancelled)
    DELETE /v2/messages/<id>                      cancel a pending message (202)
    GET    /_local/deliveries[?messageId=]        every delivery attempt, oldest first (DELETE clears)
    GET    /_local/messages                       every message with its state (/_local needs no token)

Not implemented: schedules, URL groups, batch, callbacks, DLQ, flow control, `Upstash-Retry-Delay`.
Messages live in memory only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import jwt
from aiohttp import web

log = logging.getLogger("localdev.qstash")

HOST = "127.0.0.1"
MIN_KEY_BYTES = 32
SIGNATURE_TTL_S = 300
MAX_LOGGED_DELIVERIES = 10_000
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
PENDING = ("CREATED", "ACTIVE", "RETRY")
FORWARD_PREFIX = "upstash-forward-"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _dev_default(name: str) -> str:
    """lib.config's development placeholder, so an unconfigured dev setup signs with what the API expects."""
    from lib.config import Settings

    default = Settings.model_fields[name].default
    return str(default.get_secret_value())


DEFAULT_TOKEN = _dev_default("qstash_token")
DEFAULT_CURRENT_SIGNING_KEY = _dev_default("qstash_current_signing_key")
DEFAULT_NEXT_SIGNING_KEY = _dev_default("qstash_next_signing_key")


def sign(key: str, *, url: str, body: bytes, now: float | None = None, ttl_s: int = SIGNATURE_TTL_S) -> str:
    """The `Upstash-Signature` QStash puts on a delivery of `body` to `url`."""
    issued = int(time.time() if now is None else now)
    body_hash = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": issued + ttl_s,
        "nbf": issued,
        "iat": issued,
        "jti": f"jwt_{secrets.token_hex(16)}",
        "body": body_hash,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def parse_duration_s(value: str) -> int:
    """`"90"`, `"60s"`, `"2m"`, `"1h30m"`, `"3d"` -> seconds."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise ValueError(f"invalid duration: {value!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_key(name: str, key: str) -> None:
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ValueError(
            f"{name} must be at least {MIN_KEY_BYTES} bytes (HS256 keys shorter than that are weak)"
        )


@dataclass
class Message:
    """One published message and where its delivery stands."""

    message_id: str
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    not_before_ms: int
    created_at_ms: int
    max_retries: int
    timeout_s: float
    queue: str | None = None
    state: str = "CREATED"
    retried: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_api(self) -> dict[str, Any]:
        """The shape `GET /v2/messages/{id}` answers (what the SDK's parse_message_response reads)."""
        out: dict[str, Any] = {
            "messageId": self.message_id,
            "url": self.url,
            "method": self.method,
            "header": {k: [v] for k, v in self.headers.items()},
            "maxRetries": self.max_retries,
            "notBefore": self.not_before_ms,
            "createdAt": self.created_at_ms,
        }
        try:
            out["body"] = self.body.decode()
        except UnicodeDecodeError:
            out["bodyBase64"] = base64.b64encode(self.body).decode()
        if self.queue is not None:
            out["queueName"] = self.queue
        return out

    def to_local(self) -> dict[str, Any]:
        """The API shape plus local state, for /_local/messages."""
        return {**self.to_api(), "state": self.state, "retried": self.retried}


class LocalQStash:
    """The server's state and handlers; run it with `serve()` (CLI) or `running()` (tests)."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        current_signing_key: str = DEFAULT_CURRENT_SIGNING_KEY,
        next_signing_key: str = DEFAULT_NEXT_SIGNING_KEY,
        retry_base_ms: int = 1000,
        retry_max_ms: int = 60_000,
        default_retries: int = 3,
        delivery_timeout_s: float = 30.0,
    ) -> None:
        _check_key("current signing key", current_signing_key)
        _check_key("next signing key", next_signing_key)
        if not token:
            raise ValueError("token must not be empty")
        self.token = token
        self.current_signing_key = current_signing_key
        self.next_signing_key = next_signing_key
        self.retry_base_ms = retry_base_ms
        self.retry_max_ms = retry_max_ms
        self.default_retries = default_retries
        self.delivery_timeout_s = delivery_timeout_s
        self.messages: dict[str, Message] = {}
        self.dedup: dict[str, str] = {}
        self.deliveries: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_LOGGED_DELIVERIES)
        self._queues: dict[str, asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    def build_app(self) -> web.Application:
        """The aiohttp app: one catch-all route, because destinations are whole URLs inside the path."""
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.cleanup_ctx.append(self._lifespan)
        return app

    async def _lifespan(self, _app: web.Application) -> AsyncIterator[None]:
        # trust_env=False: a proxy from the environment must never carry loopback deliveries.
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        yield
        tasks = [m.task for m in self.messages.values() if m.task is not None and not m.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    # --- HTTP -------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_local/"):
            return self._local(request)
        if not path.startswith("/v2/"):
            return _error(404, f"no route for {request.method} {path}")
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        if request.method == "POST" and path.startswith("/v2/publish/"):
            return await self._publish(request, _after(request.raw_path, "/v2/publish/"), queue=None)
        if request.method == "POST" and path.startswith("/v2/enqueue/"):
            queue, _, destination = _after(request.raw_path, "/v2/enqueue/").partition("/")
            if not queue:
                return _error(400, "queue name is required")
            return await self._publish(request, destination, queue=unquote(queue))
        match = re.fullmatch(r"/v2/messages/([^/]+)", request.raw_path.split("?", 1)[0])
        if match and request.method == "GET":
            return self._get_message(unquote(match.group(1)))
        if match and request.method == "DELETE":
            return self._cancel_message(unquote(match.group(1)))
        return _error(404, f"{request.method} {path} is not supported by the local QStash")

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, supplied = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode(), self.token.encode()
        )

    async def _publish(self, request: web.Request, destination: str, *, queue: str | None) -> web.Response:
        if re.match(r"^https?%3A", destination, re.IGNORECASE):
            destination = unquote(destination)
        if not re.match(r"^https?://[^/?#]+", destination):
            return _error(400, f"invalid destination url: {destination!r}")
        h = request.headers
        try:
            method = h.get("Upstash-Method", "POST").upper()
            if method not in METHODS:
                raise ValueError(f"invalid Upstash-Method: {method!r}")
            max_retries = int(h.get("Upstash-Retries", self.default_retries))
            if max_retries < 0:
                raise ValueError("Upstash-Retries must be >= 0")
            delay_s = parse_duration_s(h["Upstash-Delay"]) if "Upstash-Delay" in h else 0
            not_before_s = int(h["Upstash-Not-Before"]) if "Upstash-Not-Before" in h else None
            timeout_s = (
                float(parse_duration_s(h["Upstash-Timeout"]))
                if "Upstash-Timeout" in h
                else self.delivery_timeout_s
            )
        except ValueError as exc:
            return _error(400, str(exc))

        body = await request.read()
        forwarded = {
            k[len(FORWARD_PREFIX) :]: v for k, v in h.items() if k.lower().startswith(FORWARD_PREFIX)
        }
        if "Content-Type" in h:
            forwarded["Content-Type"] = h["Content-Type"]

        dedup_key = None
        if h.get("Upstash-Deduplication-Id"):
            dedup_key = "id:" + h["Upstash-Deduplication-Id"]
        elif h.get("Upstash-Content-Based-Deduplication", "").lower() == "true":
            content = json.dumps([destination, sorted(forwarded.items()), body.hex()])
            dedup_key = "content:" + hashlib.sha256(content.encode()).hexdigest()
        if dedup_key is not None and dedup_key in self.dedup:
            # The real service answers a duplicate with 202 and the first message's id.
            return web.json_response({"messageId": self.dedup[dedup_key], "deduplicated": True}, status=202)

        now = _now_ms()
        # As in the real service, Upstash-Not-Before wins over Upstash-Delay.
        not_before_ms = not_before_s * 1000 if not_before_s is not None else now + delay_s * 1000
        message = Message(
            message_id=f"msg_{secrets.token_hex(16)}",
            url=destination,
            method=method,
            headers=forwarded,
            body=body,
            not_before_ms=not_before_ms,
            created_at_ms=now,
            max_retries=max_retries,
            timeout_s=timeout_s,
            queue=queue,
        )
        self.messages[message.message_id] = message
        if dedup_key is not None:
            self.dedup[dedup_key] = message.message_id
        message.task = asyncio.create_task(self._deliver(message), name=f"deliver {message.message_id}")
        log.info(
            "published %s -> %s %s (due in %d ms)",
            message.message_id,
            method,
            destination,
            not_before_ms - now,
        )
        return web.json_response({"messageId": message.message_id}, status=201)

    def _get_message(self, message_id: str) -> web.Response:
        message = self.messages.get(message_id)
        if message is None or message.state not in PENDING:
            return _error(404, "message not found")
        return web.json_response(message.to_api())

    def _cancel_message(self, message_id: str) -> web.Response:
        message = self.messages.get(message_id)
        if message is None or message.state not in PENDING:
            return _error(404, "message not found")
        message.state = "CANCELLED"
        if message.task is not None:
            message.task.cancel()
        log.info("cancelled %s", message_id)
        return web.Response(status=202)

    def _local(self, request: web.Request) -> web.Response:
        if request.path == "/_local/deliveries" and request.method == "GET":
            wanted = request.query.get("messageId")
            return web.json_response(
                [d for d in self.deliveries if wanted is None or d["messageId"] == wanted]
            )
        if request.path == "/_local/deliveries" and request.method == "DELETE":
            self.deliveries.clear()
            return web.Response(status=204)
        if request.path == "/_local/messages" and request.method == "GET":
            return web.json_response([m.to_local() for m in self.messages.values()])
        if request.path == "/_local/health":
            return web.json_response({"ok": True})
        return _error(404, f"no route for {request.method} {request.path}")

    # --- delivery ---------------------------------------------------------------------------------

    async def _deliver(self, message: Message) -> None:
        """Wait until due, then attempt until a 2xx or the retries run out."""
        wait_s = (message.not_before_ms - _now_ms()) / 1000
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        lock = self._queues.setdefault(message.queue, asyncio.Lock()) if message.queue else None
        async with lock or contextlib.nullcontext():
            while True:
                message.state = "ACTIVE"
                delivered, retryable = await self._attempt(message)
                if delivered:
                    message.state = "DELIVERED"
                    return
                if not retryable or message.retried >= message.max_retries:
                    message.state = "FAILED"
                    log.warning("gave up on %s after %d attempts", message.message_id, message.retried + 1)
                    return
                message.retried += 1
                message.state = "RETRY"
                await asyncio.sleep(self.backoff_s(message.retried))

    def backoff_s(self, retried: int) -> float:
        """Delay before retry number `retried` (1-based): base * 2^(n-1), capped."""
        return min(self.retry_max_ms, self.retry_base_ms * 2 ** (retried - 1)) / 1000

    async def _attempt(self, message: Message) -> tuple[bool, bool]:
        """One HTTP request to the destination; (delivered, worth retrying)."""
        assert self._client is not None
        headers = {
            **message.headers,
            "Upstash-Signature": sign(self.current_signing_key, url=message.url, body=message.body),
            "Upstash-Message-Id": message.message_id,
            "Upstash-Retried": str(message.retried),
            "User-Agent": "Upstash-QStash",
        }
        record: dict[str, Any] = {
            "messageId": message.message_id,
            "url": message.url,
            "method": message.method,
            "retried": message.retried,
            "at": _now_ms(),
            "status": None,
            "error": None,
        }
        started = time.perf_counter()
        delivered, retryable = False, True
        try:
            response = await self._client.request(
                message.method, message.url, headers=headers, content=message.body, timeout=message.timeout_s
            )
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        else:
            record["status"] = response.status_code
            record["responseBody"] = response.text[:1000]
            delivered = response.is_success
            # QStash's documented opt-out: 489 + Upstash-NonRetryable-Error stops retries at once.
            retryable = not (
                response.status_code == 489
                and response.headers.get("Upstash-NonRetryable-Error", "") == "true"
            )
        record["ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.deliveries.append(record)
        log.info(
            "delivery %s retried=%d -> %s",
            message.message_id,
            message.retried,
            record["status"] if record["error"] is None else record["error"],
        )
        return delivered, retryable


def _after(raw_path: str, prefix: str) -> str:
    """The raw request target after `prefix` (query kept: it belongs to the destination URL)."""
    return raw_path[len(prefix) :]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


# --- tests: run it in a background thread --------------------------------------------------------


@dataclass
class Handle:
    """A running local QStash: its URL and secrets, plus helpers to read the delivery log."""

    url: str
    token: str
    current_signing_key: str
    next_signing_key: str
    server: LocalQStash = field(repr=False)

    def deliveries(self, message_id: str | None = None) -> list[dict[str, Any]]:
        """The delivery attempts so far (optionally for one message), oldest first."""
        params = {"messageId": message_id} if message_id else None
        response = httpx.get(f"{self.url}/_local/deliveries", params=params, timeout=5.0, trust_env=False)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def wait_for_deliveries(
        self, count: int, *, message_id: str | None = None, timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` attempts are logged (bounded by `timeout_s`); returns what was seen."""
        deadline = time.monotonic() + timeout_s
        seen = self.deliveries(message_id)
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            seen = self.deliveries(message_id)
        return seen


@contextlib.contextmanager
def running(
    *,
    token: str = DEFAULT_TOKEN,
    current_signing_key: str = DEFAULT_CURRENT_SIGNING_KEY,
    next_signing_key: str = DEFAULT_NEXT_SIGNING_KEY,
    retry_base_ms: int = 50,
    retry_max_ms: int = 1000,
    default_retries: int = 3,
    delivery_timeout_s: float = 5.0,
) -> Iterator[Handle]:
    """Start a local QStash on a free port in a background thread; stop it and its deliveries on exit."""
    server = LocalQStash(
        token=token,
        current_signing_key=current_signing_key,
        next_signing_key=next_signing_key,
        retry_base_ms=retry_base_ms,
        retry_max_ms=retry_max_ms,
        default_retries=default_retries,
        delivery_timeout_s=delivery_timeout_s,
    )
    sock = _bind(0)
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.build_app(), access_log=None)
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    thread = threading.Thread(target=serve, name=f"local-qstash-{port}", daemon=True)
    thread.start()
    started.wait(10)
    if failure or not started.is_set():
        thread.join(5)
        sock.close()
        raise RuntimeError("local QStash did not start") from (failure[0] if failure else None)
    try:
        yield Handle(f"http://{HOST}:{port}", token, current_signing_key, next_signing_key, server)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        sock.close()


# --- CLI -----------------------------------------------------------------------------------------


async def serve(server: LocalQStash, port: int) -> None:
    """Serve until SIGTERM or SIGINT; prints one `ready <url>` line once listening."""
    sock = _bind(port)
    runner = web.AppRunner(server.build_app(), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(f"ready http://{HOST}:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m localdev.qstash_server --port 8080 ...`."""
    parser = argparse.ArgumentParser(
        prog="python -m localdev.qstash_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--current-signing-key", default=DEFAULT_CURRENT_SIGNING_KEY)
    parser.add_argument("--next-signing-key", default=DEFAULT_NEXT_SIGNING_KEY)
    parser.add_argument(
        "--retry-base-ms", type=int, default=1000, help="first retry delay; doubles per retry"
    )
    parser.add_argument("--retry-max-ms", type=int, default=60_000)
    parser.add_argument("--default-retries", type=int, default=3, help="when Upstash-Retries is not sent")
    parser.add_argument(
        "--delivery-timeout-s", type=float, default=30.0, help="when Upstash-Timeout is not sent"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s qstash %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        server = LocalQStash(
            token=args.token,
            current_signing_key=args.current_signing_key,
            next_signing_key=args.next_signing_key,
            retry_base_ms=args.retry_base_ms,
            retry_max_ms=args.retry_max_ms,
            default_retries=args.default_retries,
            delivery_timeout_s=args.delivery_timeout_s,
        )
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(serve(server, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

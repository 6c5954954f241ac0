"""Upstash Redis over REST: one client per process, keys under the configured prefix, a bounded timeout."""

# Callers write so that repeating an operation is harmless (SADD/SREM, SET with EX, HSET of a whole value):
# a retried request must not leave a counter that INCR made drift.

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from lib import config
from lib.config import get_settings, settings_cached

log = logging.getLogger("digis.redis")

# What a Redis call raises when Upstash is down, slow or refuses: catch these, never bare Exception.
# (ValueError covers a non-JSON reply, e.g. a proxy's HTML error page.)
REDIS_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    UpstashError,
    ValueError,
    OSError,
    http.client.HTTPException,
)
BREAKER_COOLDOWN_S = (
    15.0  # after a failure, how long the instance stops asking Redis (each failure costs a timeout)
)


class Breaker:
    """The instance's one "Redis is down, stop asking for a while" switch, shared by every Redis user.

    A failure opens it for `cooldown_s`: callers skip Redis and use their fallback (local limits, the database,
    "offline") at no cost. After the cooldown one caller tries (half-open); its success closes the breaker, its
    failure opens it for another cooldown. One instance per process (`breaker`), so the rate limiter finding Redis
    dead also spares presence, stats and stream viewers their own timeout.
    """

    def __init__(
        self, *, cooldown_s: float = BREAKER_COOLDOWN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True while Redis is skipped without being asked."""
        opened = self._opened_at
        return opened is not None and self._clock() - opened < self.cooldown_s

    def allow(self) -> bool:
        """Whether Redis may be asked now (after a cooldown, one caller per cooldown gets to try)."""
        if self._opened_at is None:  # the hot path: no lock while Redis is healthy
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._opened_at = self._clock()  # half-open: this caller tries; the others wait another cooldown
            return True

    def record(self, ok: bool) -> bool:
        """The outcome of a call `allow()` let through; True when it changed the state (opened or closed)."""
        if ok and self._opened_at is None:
            return False
        with self._lock:
            was_open = self._opened_at is not None
            self._opened_at = None if ok else self._clock()
            return was_open == ok

    def failed(self, exc: BaseException, what: str) -> bool:
        """Record a failure of `what` (logged once per opening); True when this failure opened the breaker."""
        opened = self.record(False)
        if opened:
            log.warning("redis unavailable for %s (%s); skipping Redis for %.0f s", what, type(exc).__name__,
                        self.cooldown_s)  # fmt: skip
        return opened

    def reset(self) -> None:
        """Close the breaker (tests, and a successful rebuild of derived data)."""
        with self._lock:
            self._opened_at = None


breaker = Breaker()
config.on_reset(breaker.reset)  # new settings may name another Redis: ask it afresh


@settings_cached
def get_redis() -> Redis:
    """The process-wide Upstash client, with a real timeout and no retry sleep."""
    settings = get_settings()
    client = Redis(
        url=settings.upstash_redis_rest_url.rstrip("/"),
        token=settings.upstash_redis_rest_token.get_secret_value(),
        rest_retries=0,  # the SDK sleeps 3 s between retries; a request would rather fail over now
        rest_retry_interval=0,
        allow_telemetry=False,
    )
    # The SDK builds httpx.Client(timeout=None): a slow Upstash would hang the function until Vercel kills it.
    client._http._client.close()
    client._http._client = httpx.Client(
        timeout=httpx.Timeout(settings.redis_timeout_s),
        # trust_env=False: proxies come from Settings or nowhere (config is the only reader of the environment).
        trust_env=False,
        transport=httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],  # small requests, no Nagle delay
        ),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    # The SDK writes this header on every call; present from the start, concurrent threads never resize the dict.
    client._headers.setdefault("Upstash-Sync-Token", "")
    return client


@dataclass(frozen=True)
class _Endpoint:
    https: bool
    host: str
    port: int
    path: str
    headers: dict[str, str]
    timeout_s: float


@settings_cached
def _endpoint() -> _Endpoint:
    settings = get_settings()
    url = urlsplit(settings.upstash_redis_rest_url.rstrip("/"))
    https = url.scheme == "https"
    return _Endpoint(
        https=https,
        host=url.hostname or "",
        port=url.port or (443 if https else 80),
        path=url.path + "/pipeline",
        headers={
            "Authorization": f"Bearer {settings.upstash_redis_rest_token.get_secret_value()}",
            "Content-Type": "application/json",
        },
        timeout_s=settings.redis_timeout_s,
    )


_connections = threading.local()  # http.client connections are not thread-safe: one kept-alive per thread
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def pipeline(commands: Sequence[Sequence[object]]) -> list[Any]:
    """Run `commands` (e.g. `[["SCARD", key]]`) as one Upstash REST `/pipeline` call; their results in order.

    The hot paths' client (rate limits, presence, the active-sessions count): a kept-alive stdlib connection per
    thread costs a tenth of the SDK's httpx client in CPU per call. Raises one of REDIS_ERRORS (an `UpstashError`
    naming a command's error); the breaker is the caller's business.
    """
    endpoint = _endpoint()
    body = json.dumps([[str(a) if not isinstance(a, str | int | float) else a for a in c] for c in commands])
    conn, reused = _connection_for(endpoint)
    try:
        try:
            status, raw = _post(conn, endpoint, body.encode())
        except _STALE:
            if not reused:
                raise
            # The server closed the idle kept-alive connection before reading the request: ask once more.
            conn.close()
            conn, _ = _connection_for(endpoint, fresh=True)
            status, raw = _post(conn, endpoint, body.encode())
    except BaseException:
        conn.close()
        _connections.current = None
        raise
    if status != 200:
        raise UpstashError(f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
    answers = json.loads(raw)
    if not isinstance(answers, list) or len(answers) != len(commands):
        raise ValueError("unexpected Upstash pipeline reply")
    results = []
    for answer in answers:
        if not isinstance(answer, dict) or "error" in answer:
            raise UpstashError(str(answer.get("error") if isinstance(answer, dict) else answer))
        results.append(answer.get("result"))
    return results


def _connection_for(endpoint: _Endpoint, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
    current = getattr(_connections, "current", None)
    if current is not None:
        if not fresh and current[0] is endpoint:
            return current[1], True
        current[1].close()  # settings changed (another Redis) or the connection went stale
    factory = http.client.HTTPSConnection if endpoint.https else http.client.HTTPConnection
    conn = factory(endpoint.host, endpoint.port, timeout=endpoint.timeout_s)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests, no Nagle delay
    _connections.current = (endpoint, conn)
    return conn, False


def _post(conn: http.client.HTTPConnection, endpoint: _Endpoint, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", endpoint.path, body=body, headers=endpoint.headers)
    response = conn.getresponse()
    return response.status, response.read()


def key(*parts: object) -> str:
    """A Redis key: `redis_key_prefix` followed by the parts joined with ':'."""
    prefix = get_settings().redis_key_prefix
    body = ":".join(str(p) for p in parts)
    if not prefix:
        return body
    return f"{prefix}{body}" if prefix.endswith(":") else f"{prefix}:{body}"


def ping() -> bool:
    """True when Redis answers PING within the timeout; never raises."""
    try:
        return get_redis().ping() == "PONG"
    except Exception as exc:  # a health check reports, it does not fail the request
        log.warning("redis ping failed: %s: %s", type(exc).__name__, exc)
        return False

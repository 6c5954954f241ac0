"""Rate limits per user and per client IP, shared through Upstash, with an in-process fallback.

Every limited request counts once against its user (when the token names one) and once against its client
IP, in 60-second sliding windows (upstash-ratelimit's `SlidingWindow`): 20 a minute for `/auth/*`, 10 for
payment routes, 300 for everything else; it passes only if both counts allow it, and a refusal is a 429 with
`Retry-After` and the `RateLimit-*` headers. The client IP is the one Vercel's edge writes into `x-real-ip`
(then the first `x-vercel-forwarded-for`, then the socket peer); `X-Forwarded-For` is never read, because any
client can set it, and IPv6 addresses count per /64, the block one subscriber usually holds. If Redis fails or
answers slower than `REDIS_TIMEOUT_S`, the instance logs one warning, reports it to Sentry, stops asking Redis
while the instance's one Redis breaker (`lib.redis.breaker`, 15 s at a time) is open and enforces the same
limits with in-process counters. Limits then hold per instance instead of globally (looser by the number of
warm instances, never off) and no request waits on a dead Redis: failing open would hand out an unlimited login
endpoint exactly when Redis is overwhelmed, and failing closed would turn a Redis outage into an API outage.

A read (GET/HEAD) is counted while it runs: its Redis round trip overlaps the database's, and a refused read
answers 429 instead of its result (lib.http). A write is counted before it runs.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request
from upstash_ratelimit import Response, SlidingWindow

from lib import redis
from lib.config import settings_cached
from lib.errors import RateLimited

log = logging.getLogger(__name__)

Bucket = Literal["auth", "payment", "default"]
LIMITS: dict[Bucket, int] = {"auth": 20, "payment": 10, "default": 300}
WINDOW_S = 60
_MAX_LOCAL_IDENTIFIERS = 100_000  # bounds the fallback's memory under a flood of distinct clients


class _LocalWindows:
    """SlidingWindow's arithmetic over in-process counters: the same limits, one instance's view."""

    def __init__(self, window_s: int) -> None:
        self._window_ms = window_s * 1000
        self._lock = threading.Lock()
        self._index = 0
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def hit(self, identifier: str, limit: int) -> Response:
        """Count one request for identifier, unless the weighted count is already at the limit."""
        now = int(time.time() * 1000)
        index, into = divmod(now, self._window_ms)
        reset = (index + 1) * self._window_ms / 1000
        with self._lock:
            if index != self._index:
                self._previous = self._current if index == self._index + 1 else {}
                self._current, self._index = {}, index
            previous = math.floor((1 - into / self._window_ms) * self._previous.get(identifier, 0))
            current = self._current.get(identifier, 0)
            if previous + current >= limit:
                return Response(allowed=False, limit=limit, remaining=0, reset=reset)
            if identifier not in self._current and len(self._current) >= _MAX_LOCAL_IDENTIFIERS:
                self._previous, self._current = {}, {}  # forget rather than grow without bound
                current = previous = 0
            self._current[identifier] = current + 1
            return Response(allowed=True, limit=limit, remaining=limit - previous - current - 1, reset=reset)


@dataclass
class _Limiter:
    """Per-process limiter state: the shared windows' key prefix, the fallback counters, Redis's health."""

    prefix: str
    windows: dict[Bucket, SlidingWindow]
    local: _LocalWindows = field(default_factory=lambda: _LocalWindows(WINDOW_S))
    degraded: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(
        self, bucket: Bucket, identifiers: list[str], also: list[list[object]] | None = None
    ) -> list[Response]:
        """One response per identifier: from Redis when it answers, else from the local counters.

        `also`: idempotent Redis commands to send in the same round trip (a presence heartbeat); their
        answers are ignored and they are dropped while Redis is down."""
        if redis.breaker.allow():
            try:
                responses = self._check_redis(bucket, identifiers, also or [])
            # Any failure, even an unexpected one: limit locally rather than fail the request or stop limiting.
            except Exception as exc:
                redis.breaker.failed(exc, "rate limits")
                self._fall_back(exc)
            else:
                redis.breaker.record(True)
                if self.degraded:
                    self._recovered()
                return responses
        elif not self.degraded:
            self._fall_back(RuntimeError("the Redis breaker is open"))
        limit = LIMITS[bucket]
        return [self.local.hit(f"{bucket}:{i}", limit) for i in identifiers]

    def _check_redis(
        self, bucket: Bucket, identifiers: list[str], also: list[list[object]]
    ) -> list[Response]:
        # Ratelimit.limit() costs one HTTP round trip per identifier; driving SlidingWindow's own command
        # generator (upstash-ratelimit 1.2.0, pinned) sends every identifier's script in one pipeline instead,
        # over lib.redis's lean REST client.
        window = self.windows[bucket]
        steps = [window._limit(f"{self.prefix}:{bucket}:{i}") for i in identifiers]
        commands: list[list[object]] = []
        for step in steps:
            command, (script, keys, args) = next(step)
            if command != "eval":
                raise RuntimeError(f"unexpected rate-limit command {command!r}")
            commands.append(["EVAL", script, len(keys), *keys, *args])
        results = redis.pipeline(commands + also)[: len(steps)]
        return [step.send(result) for step, result in zip(steps, results, strict=True)]

    def _recovered(self) -> None:
        with self._lock:
            was_degraded, self.degraded = self.degraded, False
        if was_degraded:
            log.info("rate limiter: Redis answers again; limits are shared across instances again")

    def _fall_back(self, exc: Exception) -> None:
        with self._lock:
            first, self.degraded = not self.degraded, True
        if not first:
            return
        message = f"rate limiter: Redis unavailable ({type(exc).__name__}: {exc}); limiting per instance"
        log.warning(message)
        try:
            import sentry_sdk  # only on this rare path, so a healthy cold start never imports it

            sentry_sdk.capture_message(message, level="warning")
        except Exception:  # reporting must not turn a degraded limiter into a failed request
            log.debug("rate limiter: could not report to Sentry", exc_info=True)


@settings_cached
def _limiter() -> _Limiter:
    return _Limiter(
        prefix=redis.key("ratelimit"),
        windows={
            bucket: SlidingWindow(max_requests=n, window=WINDOW_S, unit="s") for bucket, n in LIMITS.items()
        },
    )


def client_ip(request: Request) -> str:
    """The client's address as Vercel reports it (IPv6 as its /64); never a client-supplied X-Forwarded-For."""
    headers = request.headers
    raw = (
        headers.get("x-real-ip")
        or headers.get("x-vercel-forwarded-for", "").split(",")[0]
        or (request.client.host if request.client else "")
    ).strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def enforce(
    request: Request, bucket: Bucket, user_id: str | None, also: list[list[object]] | None = None
) -> dict[str, str]:
    """Count this request; the RateLimit-* headers when it may pass, else raise RateLimited (429).

    `also`: idempotent commands to ride along in the limiter's Redis round trip (see `_Limiter.check`)."""
    identifiers = [f"ip:{client_ip(request)}"]
    if user_id:
        identifiers.append(f"user:{user_id}")
    responses = _limiter().check(bucket, identifiers, also)
    now = time.time()
    tightest = min(responses, key=lambda r: (r.allowed, r.remaining))
    headers = {
        "RateLimit-Limit": str(LIMITS[bucket]),
        "RateLimit-Remaining": str(tightest.remaining if tightest.allowed else 0),
        "RateLimit-Reset": str(_seconds_until(tightest.reset, now)),
    }
    if tightest.allowed:
        return headers
    retry_after = max(_seconds_until(r.reset, now) for r in responses if not r.allowed)
    raise RateLimited(
        "Too many requests; try again later",
        headers={**headers, "Retry-After": str(retry_after)},
        retryAfter=retry_after,
    )


def _seconds_until(timestamp: float, now: float) -> int:
    return max(1, math.ceil(timestamp - now))

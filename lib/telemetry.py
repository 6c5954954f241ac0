"""Client telemetry (`POST /telemetry`, sent by `navigator.sendBeacon` as the call page unloads): log lines only.

A beacon has no auth header and any content type (`text/plain`, `application/json`, none), and the browser never
reads the answer, so every well-formed or malformed body gets 204: a bad beacon is counted in the log, never a 4xx.
Bodies over MAX_BYTES and clients over the per-IP limit (lib.ratelimit's default bucket, 300 a minute, shared
with the rest of the API) are dropped, still with 204. Nothing is stored; the log line keeps the event, reason,
duration, visibility and channel name, and drops everything else (user agent, IP, user ids).
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from lib import ratelimit
from lib.errors import RateLimited

log = logging.getLogger("digis.telemetry")

MAX_BYTES = 4096
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_.:=@-]{1,128}$")
MAX_DURATION_S = 7 * 24 * 3600


async def receive(request: Request) -> None:
    """Read the beacon and log it (the limiter's Redis round trip runs off the event loop)."""
    await run_in_threadpool(record, request, await request.body())


def record(request: Request, body: bytes) -> None:
    """Log one beacon as a structured line, or a `dropped` line saying why it was not."""
    try:
        ratelimit.enforce(request, "default", None)
    except RateLimited:
        _emit({"msg": "telemetry", "dropped": "rate_limited"})
        return
    if len(body) > MAX_BYTES:
        _emit({"msg": "telemetry", "dropped": "too_large", "bytes": len(body)})
        return
    fields = parse(body)
    if fields is None:
        _emit({"msg": "telemetry", "dropped": "malformed", "bytes": len(body)})
        return
    _emit({"msg": "telemetry", **fields})


def parse(body: bytes) -> dict[str, Any] | None:
    """The fields worth keeping from a beacon body (JSON object), or None when it is not one."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {"event": _token(data.get("event")) or "unknown"}
    for name in ("reason", "visibilityState"):
        value = _token(data.get(name))
        if value is not None:
            out[name] = value
    duration = _number(data.get("duration"))
    if duration is not None:
        out["durationS"] = duration
    channel = data.get("channel")
    if isinstance(channel, str) and _CHANNEL.match(channel):
        out["channel"] = channel
    ts = _number(data.get("ts"))
    if ts is not None:
        out["clientTs"] = int(ts)
    return out


def _token(value: object) -> str | None:
    return value if isinstance(value, str) and _TOKEN.match(value) else None


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    if value > 1e13:  # not a duration nor a millisecond timestamp
        return None
    return round(value, 3) if isinstance(value, float) else value


def _emit(line: dict[str, Any]) -> None:
    log.info(json.dumps(line, separators=(",", ":")))

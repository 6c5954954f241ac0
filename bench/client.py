"""A lean asyncio HTTP/1.1 client for load: keep-alive, per-connection source address, nothing else.

httpx spends more CPU per request than the functions under test on a 2-core machine; this client writes
pre-encoded requests and parses only the status line, the headers and a Content-Length or chunked body.
Each connection binds its own loopback source address (127.x.y.z), so the router, which sets `x-real-ip` from
the socket peer as Vercel's edge does, sees many clients and the per-IP rate limit never refuses a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request to send (headers without Host and Content-Length)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        """The bytes on the wire."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"host: {host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.body or self.method not in ("GET", "HEAD", "DELETE"):
            lines.append(f"content-length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True)
class Response:
    """Status, lower-cased headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class SourceIps:
    """Distinct loopback source addresses: 127.1.0.1, 127.1.0.2, ... (the whole 127/8 is loopback)."""

    def __init__(self, start: int = 0) -> None:
        self._n = itertools.count(start)

    def next(self) -> str:
        """A source address no connection of this run has used."""
        n = next(self._n)
        return f"127.{1 + n // 65024}.{(n // 254) % 256}.{1 + n % 254}"


class Connection:
    """One keep-alive connection to host:port, bound to `source_ip` when given."""

    def __init__(self, host: str, port: int, source_ip: str | None = None) -> None:
        self.host, self.port, self.source_ip = host, port, source_ip
        self._host_header = f"{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect (no-op when connected)."""
        if self._writer is None:
            local = (self.source_ip, 0) if self.source_ip else None
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def close(self) -> None:
        """Close the socket."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def send(self, request: Request) -> Response:
        """Send one request and read its response (reconnecting first if the server closed the socket)."""
        await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(request.encode(self._host_header))
        await self._writer.drain()
        response = await self._read(self._reader, request.method)
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _read(self, reader: asyncio.StreamReader, method: str) -> Response:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            raise ValueError("response headers too large")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Response(status, headers, b"")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(data[:-2])
            return Response(status, headers, b"".join(chunks))
        if "content-length" in headers:
            return Response(status, headers, await reader.readexactly(int(headers["content-length"])))
        body = await reader.read()
        await self.close()
        return Response(status, headers, body)


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@dataclass
class LoadResult:
    """Latencies (seconds) of every request, the wall time of the whole batch, statuses and transport errors."""

    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        """Add another batch of the same target."""
        self.latencies += other.latencies
        self.wall_s += other.wall_s
        self.statuses.update(other.statuses)
        self.errors += other.errors

    @property
    def requests_per_s(self) -> float:
        """Requests completed per second of wall time."""
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def unexpected(self) -> int:
        """Requests that did not answer 2xx, or failed on the wire."""
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + len(self.errors)


async def load(
    url: str,
    make_request: Callable[[int], Request],
    *,
    clients: int,
    requests: int,
    ips: SourceIps,
    per_connection: int = 100,
    start: int = 0,
) -> LoadResult:
    """`requests` requests (`make_request(i)` for i from `start`) from `clients` concurrent connections.

    A connection is replaced (with a new source address) every `per_connection` requests, so no client
    address sends more than that: far below the 300-a-minute limit per IP.
    """
    host, port = split_url(url)
    result = LoadResult()
    counter: Iterator[int] = iter(range(start, start + requests))

    async def worker() -> None:
        conn: Connection | None = None
        used = 0
        for i in counter:
            if conn is None or used >= per_connection:
                if conn is not None:
                    await conn.close()
                conn, used = Connection(host, port, ips.next()), 0
                await conn.open()
            request = make_request(i)
            t0 = time.perf_counter()
            try:
                response = await conn.send(request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                await conn.close()
                conn = None
                continue
            result.latencies.append(time.perf_counter() - t0)
            result.statuses[response.status] += 1
            used += 1
        if conn is not None:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    result.wall_s = time.perf_counter() - t0
    return result


def share(total: int, parts: int, i: int) -> int:
    """Part i of `total` split into `parts` nearly equal whole parts (they add up to `total`)."""
    return total * (i + 1) // parts - total * i // parts


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    """The median (the lower middle for an even count, like a nearest-rank p50)."""
    return percentile(values, 50)

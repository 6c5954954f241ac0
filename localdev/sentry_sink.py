"""A local Sentry that keeps what the SDK sends: `python -m localdev.sentry_sink --port 8082`.

Point the SDK at `http://<key>@127.0.0.1:PORT/1`. Items are kept in memory (`GET /_local/events`, optionally
`?type=event`; `DELETE /_local/events` forgets them) and appended as JSON lines to `--out` when given.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localdev import serving

HOST = "127.0.0.1"
DEFAULT_PORT = 8082
MAX_BODY_BYTES = 20 * 1024 * 1024  # Sentry's own envelope limit is in this range; refuse anything bigger
_INGEST_PATH = re.compile(r"^/api/(?P<project>[^/]+)/(?P<kind>envelope|store)/?$")
_SENTRY_KEY = re.compile(r"sentry_key=([^,\s]+)")

Item = dict[str, Any]


class EnvelopeError(ValueError):
    """The body is not a Sentry envelope."""


def _decode_payload(raw: bytes) -> Any:
    """JSON when the payload is JSON, else text (attachments and the like)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Any]]]:
    """Split an envelope into its header and (item header, payload) pairs."""
    first, _, rest = body.partition(b"\n")
    try:
        header = json.loads(first) if first.strip() else {}
    except ValueError as exc:
        raise EnvelopeError(f"envelope header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise EnvelopeError("envelope header is not a JSON object")
    items: list[tuple[dict[str, Any], Any]] = []
    pos = 0
    while pos < len(rest):
        end = rest.find(b"\n", pos)
        line = rest[pos:] if end < 0 else rest[pos:end]
        pos = len(rest) if end < 0 else end + 1
        if not line.strip():
            continue  # trailing newlines
        try:
            item_header = json.loads(line)
        except ValueError as exc:
            raise EnvelopeError(f"item header is not JSON: {exc}") from exc
        if not isinstance(item_header, dict) or "type" not in item_header:
            raise EnvelopeError("item header has no type")
        length = item_header.get("length")
        if isinstance(length, int):
            if length < 0 or pos + length > len(rest):
                raise EnvelopeError("item length runs past the end of the envelope")
            payload = rest[pos : pos + length]
            pos += length
            if rest[pos : pos + 1] == b"\n":
                pos += 1
        else:
            end = rest.find(b"\n", pos)
            payload = rest[pos:] if end < 0 else rest[pos:end]
            pos = len(rest) if end < 0 else end + 1
        items.append((item_header, _decode_payload(payload)))
    return header, items


def decompress(body: bytes, encoding: str) -> bytes:
    """Undo the Content-Encoding the SDK used (gzip by default; deflate; br when brotli is installed)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        try:
            import brotli
        except ImportError as exc:
            raise EnvelopeError("br encoding needs the brotli package") from exc
        return bytes(brotli.decompress(body))
    raise EnvelopeError(f"unsupported Content-Encoding {encoding!r}")


class SentrySink(ThreadingHTTPServer):
    """The HTTP server and the items it has received."""

    daemon_threads = True

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        out: Path | None = None,
        key: str | None = None,
        quiet: bool = False,
    ) -> None:
        super().__init__((HOST, port), _Handler)
        self.out = out
        self.key = key
        self.quiet = quiet
        self._items: list[Item] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{HOST}:{self.server_address[1]}"

    def dsn(self, key: str | None = None, project: str = "1") -> str:
        """A DSN that sends to this sink."""
        return f"http://{key or self.key or 'public'}@{HOST}:{self.server_address[1]}/{project}"

    def record(self, items: list[Item]) -> None:
        """Keep items (and append them to the out file)."""
        with self._lock:
            self._items.extend(items)
            if self.out is not None:
                with self.out.open("a", encoding="utf-8") as f:
                    for item in items:
                        f.write(json.dumps(item, default=str) + "\n")

    def items(self, type: str | None = None) -> list[Item]:
        """Items received so far, oldest first (only one item type if given)."""
        with self._lock:
            return [i for i in self._items if type is None or i["type"] == type]

    def clear(self) -> None:
        """Forget everything received (the out file is kept)."""
        with self._lock:
            self._items.clear()

    def wait_for(
        self, predicate: Callable[[Item], bool] = lambda _: True, *, timeout_s: float = 5.0
    ) -> list[Item]:
        """Items matching `predicate`, waiting up to `timeout_s` for at least one."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [i for i in self.items() if predicate(i)]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)


class _Handler(BaseHTTPRequestHandler):
    server: SentrySink
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise EnvelopeError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise EnvelopeError("body too large")
        return self.rfile.read(length)

    def _sentry_key(self, query: dict[str, list[str]]) -> str | None:
        match = _SENTRY_KEY.search(self.headers.get("X-Sentry-Auth", ""))
        if match:
            return match.group(1)
        return query.get("sentry_key", [None])[0]

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        match = _INGEST_PATH.match(parts.path)
        if not match:
            self._reply(404, {"detail": "not found"})
            return
        query = parse_qs(parts.query)
        key = self._sentry_key(query)
        encoding = self.headers.get("Content-Encoding", "")
        try:
            body = decompress(self._read_body(), encoding)
        except (EnvelopeError, OSError, zlib.error, ValueError) as exc:
            self.close_connection = True
            self._reply(400, {"detail": str(exc)})
            return
        if self.server.key is not None and key != self.server.key:
            self._reply(401, {"detail": "invalid sentry_key"})
            return
        received_at = datetime.now(UTC).isoformat()
        project = match.group("project")
        try:
            if match.group("kind") == "store":
                event = json.loads(body)
                header: dict[str, Any]
                header = {"event_id": event.get("event_id")} if isinstance(event, dict) else {}
                pairs: list[tuple[dict[str, Any], Any]] = [({"type": "event"}, event)]
            else:
                header, pairs = parse_envelope(body)
        except (EnvelopeError, ValueError) as exc:
            self._reply(400, {"detail": str(exc)})
            return
        self.server.record(
            [
                {
                    "received_at": received_at,
                    "project": project,
                    "sentry_key": key,
                    "content_encoding": encoding or None,
                    "envelope": header,
                    "type": item_header["type"],
                    "headers": item_header,
                    "payload": payload,
                }
                for item_header, payload in pairs
            ]
        )
        self._reply(200, {"id": header.get("event_id")})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != "/_local/events":
            self._reply(404, {"detail": "not found"})
            return
        wanted = parse_qs(parts.query).get("type", [None])[0]
        self._reply(200, self.server.items(wanted))

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path.rstrip("/") != "/_local/events":
            self._reply(404, {"detail": "not found"})
            return
        self.server.clear()
        self._reply(200, {"cleared": True})


@contextlib.contextmanager
def running(*, out: Path | None = None, key: str | None = None, quiet: bool = True) -> Iterator[SentrySink]:
    """A sink on a free port in a background thread; `.url`, `.dsn()`, `.items()`, `.wait_for()`."""
    with serving.in_thread(SentrySink(0, out=out, key=key, quiet=quiet), "sentry-sink") as sink:
        yield sink


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--out", type=Path, help="append every item as a JSON line to this file")
    parser.add_argument("--key", help="accept only this DSN public key (default: any)")
    args = parser.parse_args(argv)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    sink = SentrySink(args.port, out=args.out, key=args.key)
    return serving.serve_until_signal(sink, "sentry-sink", sink.url, f"DSN: {sink.dsn()}")


if __name__ == "__main__":
    sys.exit(main())

"""A local Vercel: every `api/**.py` function served at http://127.0.0.1:3000, routed the way Vercel routes them.

The routing itself is lib/routing (the same table the AWS Lambda entry uses: filesystem, `vercel.json` rewrites,
`[param]` routes in Vercel's order, problem+json 404/500 with the functions' envelope). This adds what only the
local server does: the merged OpenAPI document at /api/openapi.json and its page at /api/docs, and the crons.

Crons: the `vercel.json` crons fire on their schedule (UTC) as a real `GET` to this server with
`Authorization: Bearer <CRON_SECRET>` and `User-Agent: vercel-cron/1.0`. On Vercel's Hobby plan a cron runs at
most once a day, so `/api/cron/bill-active-calls` (every minute here and on Pro) is only a sweep: per-call billing
is driven by a QStash callback each minute (`/api/jobs/bill-call`); the sweep catches what was missed.

CLI: `python -m localdev.vercel_router --port 3000 [--no-crons]` (CRON_SECRET from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lib.routing import (
    ROOT,
    ASGIApp,
    Rewrite,
    Route,
    RouteConfigError,
    Router,
    app_of,
    function_files,
    load_function,
    module_name_for,
    read_vercel_json,
    routes,
)
from lib.routing.router import problem
from lib.routing.table import Receive, Scope, Send

__all__ = [  # what tests, bench and tools import from here
    "HOST",
    "ROOT",
    "CronSchedule",
    "Rewrite",
    "Route",
    "RouteConfigError",
    "Running",
    "app_of",
    "build_app",
    "function_files",
    "load_function",
    "module_name_for",
    "read_vercel_json",
    "routes",
    "running",
]

HOST = "127.0.0.1"
CRON_TIMEOUT_S = 60.0
DOC_PATHS = frozenset({"/api/openapi.json", "/api/v1/openapi.json", "/api/docs", "/api/v1/docs"})
DOCS_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"  # the page's own <style>
log = logging.getLogger("localdev.vercel_router")


@dataclass(frozen=True)
class CronSchedule:
    """A five-field cron expression (UTC) with numbers, `*`, `*/n`, `a-b`, `a-b/n` and comma lists."""

    expression: str
    fields: tuple[frozenset[int], ...]
    restricted: tuple[bool, ...]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse or raise RouteConfigError naming the bad field."""
        parts = expression.split()
        if len(parts) != 5:
            raise RouteConfigError(f"cron {expression!r}: expected 5 fields")
        ranges = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
        sets = tuple(cls._field(p, lo, hi, expression) for p, (lo, hi) in zip(parts, ranges, strict=True))
        return cls(expression, sets, tuple(p != "*" for p in parts))

    @staticmethod
    def _field(text: str, lo: int, hi: int, expression: str) -> frozenset[int]:
        values: set[int] = set()
        for item in text.split(","):
            base, _, step_text = item.partition("/")
            try:
                step = int(step_text) if step_text else 1
                a, dash, b = base.partition("-")
                start, end = (
                    (lo, hi) if base == "*" else (int(a), int(b) if dash else hi if step_text else int(a))
                )
            except ValueError:
                raise RouteConfigError(f"cron {expression!r}: can't read {item!r}") from None
            if step < 1 or not (lo <= start <= end <= hi):
                raise RouteConfigError(f"cron {expression!r}: {item!r} is outside {lo}-{hi}")
            values.update(range(start, end + 1, step))
        return frozenset(values)

    def matches(self, at: datetime) -> bool:
        """True when the schedule fires in the minute `at` (a UTC datetime) falls in."""
        minute, hour, dom, month, dow = self.fields
        if at.minute not in minute or at.hour not in hour or at.month not in month:
            return False
        day_ok, weekday_ok = at.day in dom, (at.weekday() + 1) % 7 in dow
        # Classic cron: when both day fields are restricted, either one matching is enough.
        return (
            (day_ok or weekday_ok) if self.restricted[2] and self.restricted[4] else (day_ok and weekday_ok)
        )


@dataclass(frozen=True)
class CronRun:
    """What one cron request got back (status None when the request itself failed)."""

    path: str
    status: int | None
    error: str | None = None


class LocalRouter(Router):
    """lib/routing's router plus the docs routes and the crons firing on their schedule."""

    def __init__(
        self,
        root: Path,
        *,
        cron_secret: str | None,
        fire_crons: bool,
        loader: Callable[[Route], ASGIApp] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(root, loader=loader)
        self.crons = [(c["path"], CronSchedule.parse(c["schedule"])) for c in self.config.get("crons", [])]
        self.cron_secret = cron_secret
        self.fire_crons_enabled = fire_crons
        self.base_url: str | None = None  # where crons send their GET; set once the server is listening
        self._clock = clock or (lambda: datetime.now(UTC))
        self._cron_tasks: set[asyncio.Task[Any]] = set()

    async def route(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        """The docs routes (local only: Vercel serves no such route), else the function's answer."""
        if scope["path"] in DOC_PATHS and scope.get("method") in ("GET", "HEAD"):
            await self._docs(scope["path"], send, request_id)
        else:
            await super().route(scope, receive, send, request_id)

    async def _docs(self, path: str, send: Send, request_id: str) -> None:
        from localdev import openapi  # the first build imports every function: only when someone asks

        try:
            if path.endswith(".json"):
                doc = await asyncio.to_thread(openapi.openapi_document, self.root)
                raw, headers = json.dumps(doc).encode(), [(b"content-type", b"application/json")]
            else:
                raw = (await asyncio.to_thread(openapi.docs_html, self.root)).encode()
                headers = [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-security-policy", DOCS_CSP),
                ]
        except Exception as exc:
            log.exception("OpenAPI document failed to build")
            detail = f"{type(exc).__name__}: {exc}"
            await problem(send, 500, "OPENAPI_BUILD_ERROR", detail, path, requestId=request_id)
            return
        headers.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def startup(self) -> None:
        """Start the cron loop (when asked to fire crons and there are some)."""
        if self.fire_crons_enabled and self.crons:
            self._spawn(self._cron_loop())

    async def shutdown(self) -> None:
        """Stop the crons, then every function's lifespan."""
        for task in list(self._cron_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().shutdown()

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coro)
        self._cron_tasks.add(task)
        task.add_done_callback(self._cron_tasks.discard)

    async def _cron_loop(self) -> None:
        while True:
            now = self._clock()
            next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            await asyncio.sleep(max(0.0, (next_minute - now).total_seconds()))
            # Each round runs on its own, as on Vercel: a slow cron never delays the next minute's.
            self._spawn(self.fire_crons(next_minute))

    async def fire_crons(self, at: datetime) -> list[CronRun]:
        """Send the GET of every cron due in the minute `at` to this server; what each got back."""
        due = [path for path, schedule in self.crons if schedule.matches(at)]
        if not due or self.base_url is None:
            if due:
                log.warning(
                    "crons due at %s not sent: the router does not know its own URL yet", at.isoformat()
                )
            return []
        import httpx  # only the cron sender needs it

        headers = {"user-agent": "vercel-cron/1.0"}
        if self.cron_secret:
            headers["authorization"] = f"Bearer {self.cron_secret}"
        async with httpx.AsyncClient(base_url=self.base_url, timeout=CRON_TIMEOUT_S) as client:

            async def one(path: str) -> CronRun:
                try:
                    return CronRun(path, (await client.get(path, headers=headers)).status_code)
                except httpx.HTTPError as exc:
                    return CronRun(path, None, f"{type(exc).__name__}: {exc}")

            runs = list(await asyncio.gather(*(one(p) for p in due)))
        for run in runs:
            line = {
                "msg": "cron",
                "path": run.path,
                "status": run.status,
                "at": at.isoformat(),
                "error": run.error,
            }
            log.info(json.dumps(line))
        return runs


def build_app(
    root: Path = ROOT,
    *,
    cron_secret: str | None,
    fire_crons: bool,
    loader: Callable[[Route], ASGIApp] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> LocalRouter:
    """The router over `root/api` (`loader` swaps how a function's app is obtained; `clock` drives the crons)."""
    return LocalRouter(root, cron_secret=cron_secret, fire_crons=fire_crons, loader=loader, clock=clock)


@dataclass
class Running:
    """A router listening on 127.0.0.1 in a background thread."""

    url: str
    router: LocalRouter
    loop: asyncio.AbstractEventLoop

    def fire_crons(self, at: datetime, timeout_s: float = 30.0) -> list[CronRun]:
        """Fire the crons due at `at` now, from the server's own loop (real GETs to itself)."""
        return asyncio.run_coroutine_threadsafe(self.router.fire_crons(at), self.loop).result(
            timeout=timeout_s
        )


@contextlib.contextmanager
def running(
    root: Path = ROOT,
    *,
    cron_secret: str | None = None,
    fire_crons: bool = False,
    clock: Callable[[], datetime] | None = None,
    port: int = 0,
) -> Iterator[Running]:
    """Serve the router on a free port (or `port`) in a thread until the block exits."""
    import uvicorn

    router = build_app(root, cron_secret=cron_secret, fire_crons=fire_crons, clock=clock)
    server = uvicorn.Server(uvicorn.Config(router, host=HOST, port=port, log_level="warning", lifespan="on"))
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="vercel-router", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the Vercel router did not start")
        time.sleep(0.02)
    router.base_url = f"http://{HOST}:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield Running(url=router.base_url, router=router, loop=loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def main(argv: list[str] | None = None) -> int:
    """CLI: serve every function on 127.0.0.1:PORT until SIGTERM/SIGINT (then exit 0)."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m localdev.vercel_router", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--root", type=Path, default=ROOT, help="project root holding api/ and vercel.json")
    parser.add_argument(
        "--no-crons", dest="crons", action="store_false", help="do not fire vercel.json crons"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cron_secret = os.environ.get("CRON_SECRET") or None
    if args.crons and not cron_secret:
        log.warning("CRON_SECRET is not set: crons will be sent without Authorization and refused")
    try:
        router = build_app(args.root, cron_secret=cron_secret, fire_crons=args.crons)
    except RouteConfigError as exc:
        print(f"vercel_router: {exc}", file=sys.stderr)
        return 2

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after a graceful stop; a stand-in exits 0 on SIGTERM/SIGINT instead.
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    server = Server(
        uvicorn.Config(router, host=HOST, port=args.port, log_level=args.log_level, lifespan="on")
    )

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        if server.started:
            router.base_url = f"http://{HOST}:{server.servers[0].sockets[0].getsockname()[1]}"
            print(f"ready {router.base_url}", flush=True)
            log.info(
                "%d functions, %d rewrites, crons %s", len(router.routes), len(router.rewrites), args.crons
            )
        await task

    asyncio.run(serve())
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())

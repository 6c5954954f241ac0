"""One ASGI app over every function, routed as on Vercel: the Lambda entry's handler and the local server's core.

The function gets the ORIGINAL request path in `scope["path"]`, plus the route's parameters (and any rewrite
parameters its destination does not use) appended to the query string, as Vercel's destination carries them.
Each function is imported on first use by file path, its ASGI lifespan started once (as Vercel's Python runtime
does on a cold start), and cached; an import error answers a 500 problem naming the file and is retried on the
next request. Websockets are refused: Vercel functions do not hold them. Every response, the router's own 404s
and 500s included, carries the functions' security headers and X-Request-ID (`lib.http.envelope_headers`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from lib.routing.table import (
    ASGIApp,
    Message,
    Receive,
    Route,
    Scope,
    Send,
    app_of,
    load_function,
    read_vercel_json,
    rewrites,
    routes,
)

LIFESPAN_TIMEOUT_S = 30.0  # what Vercel's runtime waits for a function's startup
PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("digis.routing")


@dataclass
class Resolution:
    """Which function answers a path, and the query pairs its destination adds."""

    route: Route
    query: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Function:
    app: ASGIApp
    lifespan: asyncio.Task[None] | None = None
    inbox: asyncio.Queue[Message] | None = None
    outbox: asyncio.Queue[Message] | None = None
    started: asyncio.Future[None] | None = None


async def problem(send: Send, status: int, code: str, detail: str, instance: str, **extra: Any) -> None:
    """Answer a problem+json body the way lib/http's error handlers shape theirs."""
    title = {404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "error": detail}
    raw = json.dumps({**body, "message": detail, "code": code, "instance": instance, **extra}).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class Router:
    """Vercel's routing over every function under `root/api`, with their lifespans."""

    def __init__(self, root: Path, *, loader: Callable[[Route], ASGIApp] | None = None) -> None:
        self.root = root.resolve()
        self.config = read_vercel_json(self.root)
        self.routes = routes(self.root)
        self.rewrites = rewrites(self.config)
        self._loader = loader or (lambda route: app_of(load_function(route.file, root=self.root), route.file))
        self._filesystem = {r.destination: r for r in self.routes}
        self._filesystem.update(
            {r.destination.removesuffix("/index") or "/": r for r in self.routes if r.file.stem == "index"}
        )
        self._functions: dict[Path, _Function] = {}
        self._import_lock = threading.Lock()
        self._serving = False  # inside a server's lifespan (uvicorn, TestClient as a context manager)
        self._atexit_registered = False

    def resolve(self, path: str) -> Resolution | None:
        """Walk Vercel's routing table for `path`: filesystem, rewrites, dynamic routes; None is a 404."""
        query: list[tuple[str, str]] = []
        if (hit := self._filesystem.get(path)) is not None:
            return Resolution(hit, query)
        for rewrite in self.rewrites:
            if (applied := rewrite.apply(path)) is not None:
                path, pairs = applied
                query += pairs
                if (hit := self._filesystem.get(path)) is not None:
                    return Resolution(hit, query)
        for route in self.routes:
            if route.dynamic and (m := route.regex.match(path)) is not None:
                return Resolution(route, query + list(zip(route.params, m.groups(), strict=False)))
        return None

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._serving = True
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    self._serving = False
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await receive()
            await send(
                {"type": "websocket.close", "code": 1008, "reason": "Vercel functions hold no websockets"}
            )
        else:
            await self._http(scope, receive, send)

    async def startup(self) -> None:
        """Called when a server starts this router (a hook for the local server's crons)."""

    async def shutdown(self) -> None:
        """Called when the server stops: every function's lifespan is shut down."""
        loop = asyncio.get_running_loop()
        for file, function in list(self._functions.items()):
            if function.lifespan is not None and function.lifespan.get_loop() is loop:
                await self._stop_lifespan(file, function)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        from lib.http import (
            envelope_headers,
            request_id_of,
        )  # imported on first use: the table stays stdlib-only

        request_id = request_id_of(scope)
        started = False

        async def enveloped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message, headers=envelope_headers(message.get("headers", []), request_id))
            await send(message)

        try:
            await self.route(scope, receive, enveloped_send, request_id)
        except Exception as exc:
            log.exception("router failed on %s", scope["path"])
            if not started:
                detail = f"The router failed: {type(exc).__name__}"
                await problem(
                    enveloped_send, 500, "ROUTER_ERROR", detail, scope["path"], requestId=request_id
                )

    async def route(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        """Answer one HTTP request from the function its path resolves to (or a 404 / 500 problem)."""
        path = scope["path"]
        resolution = self.resolve(path)
        if resolution is None:
            await problem(send, 404, "NOT_FOUND", f"No function serves {path}", path, requestId=request_id)
            return
        file = resolution.route.file
        about = {"requestId": request_id, "file": str(file)}
        try:
            function = await self._function(resolution.route)
        except Exception as exc:
            log.exception("function %s failed to load", file)
            detail = f"{file} failed to import: {type(exc).__name__}: {exc}"
            trace = traceback.format_exception_only(type(exc), exc)
            await problem(send, 500, "FUNCTION_IMPORT_ERROR", detail, path, **about, exception=trace)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await function.app(self._function_scope(scope, resolution, request_id), receive, tracking_send)
        except Exception as exc:
            # On Vercel an unhandled crash is a 500 FUNCTION_INVOCATION_FAILED, and the next request still works.
            log.exception("function %s raised", file)
            if not started:
                detail = f"{file} raised {type(exc).__name__}: {exc}"
                await problem(send, 500, "FUNCTION_INVOCATION_FAILED", detail, path, **about)

    def _function_scope(self, scope: Scope, resolution: Resolution, request_id: str) -> Scope:
        query = scope.get("query_string", b"")
        if resolution.query:
            added = urlencode(resolution.query, quote_via=quote).encode()
            query = query + b"&" + added if query else added
        client = str((scope.get("client") or ("127.0.0.1", 0))[0]).encode()
        host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"127.0.0.1")
        # Vercel overwrites these with what its edge saw; a client cannot spoof them.
        platform = {
            b"x-real-ip": client,
            b"x-forwarded-for": client,
            b"x-vercel-forwarded-for": client,
            b"x-forwarded-host": host,
            b"x-forwarded-proto": str(scope.get("scheme", "http")).encode(),
            b"x-vercel-id": f"dev1::{uuid.uuid4().hex[:20]}".encode(),
            b"x-request-id": request_id.encode(),  # the function answers with the id the router's own answers use
        }
        headers = [(k, v) for k, v in scope.get("headers", []) if k not in platform] + list(platform.items())
        # Vercel hands functions no lifespan state of the server's.
        return {
            **{k: v for k, v in scope.items() if k != "state"},
            "query_string": query,
            "headers": headers,
            "root_path": "",
        }

    # function loading and lifespans

    async def _function(self, route: Route) -> _Function:
        with self._import_lock:
            function = self._functions.get(route.file)
            if function is None:
                function = self._functions[route.file] = _Function(app=self._loader(route))
        if function.started is None:
            function.started = asyncio.get_running_loop().create_future()
            try:
                await self._start_lifespan(function, route.file)
            finally:
                function.started.set_result(None)
        elif not function.started.done():
            await asyncio.shield(function.started)
        return function

    async def _start_lifespan(self, function: _Function, file: Path) -> None:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        task = asyncio.create_task(_run_lifespan(function.app, scope, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        reply = asyncio.create_task(outbox.get())
        done, _ = await asyncio.wait(
            {reply, task}, timeout=LIFESPAN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if reply not in done or reply.result().get("type") != "lifespan.startup.complete":
            # No lifespan support (or too slow): Vercel proceeds without it, and so do we.
            if reply in done:
                log.error("%s lifespan startup failed: %s", file, reply.result().get("message", ""))
            reply.cancel()
            task.cancel()
            return
        function.lifespan, function.inbox, function.outbox = task, inbox, outbox
        if not self._serving and not self._atexit_registered:
            # Without a server lifespan (Mangum's lifespan="off") nothing else stops them; Vercel's runtime does.
            atexit.register(self._stop_lifespans_at_exit)
            self._atexit_registered = True

    async def _stop_lifespan(self, file: Path, function: _Function) -> None:
        task, inbox, outbox = function.lifespan, function.inbox, function.outbox
        function.lifespan = None
        if task is None or inbox is None or outbox is None or task.done():
            return
        await inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(outbox.get(), timeout=10)
        except TimeoutError:
            log.warning("%s lifespan shutdown timed out", file)
            task.cancel()

    def _stop_lifespans_at_exit(self) -> None:
        for file, function in list(self._functions.items()):
            task = function.lifespan
            if task is None or task.done() or task.get_loop().is_closed() or task.get_loop().is_running():
                continue
            with contextlib.suppress(Exception):
                task.get_loop().run_until_complete(self._stop_lifespan(file, function))


async def _run_lifespan(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    with contextlib.suppress(Exception):  # an app without lifespan support raises here; that means "none"
        await app(scope, receive, send)

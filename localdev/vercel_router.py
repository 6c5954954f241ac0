"""A local Vercel: every `api/**.py` function served at http://127.0.0.1:3000, routed the way Vercel routes them.

Mirrors the routing table `vercel build` writes to `.vercel/output/config.json` (checked against vercel@58.10.0):

1. filesystem: a function answers its own path (`/api/health`, and `/api/calls/[call_id]/accept` literally);
2. the `vercel.json` rewrites in order (`/api/v1/:path*` -> `/api/:path*`, the aliases), each followed by a
   filesystem check on its destination, so `/api/v1/...` then falls through to the dynamic routes;
3. the `[param]` routes (`^/api/calls/([^/]+)/accept$` -> `/api/calls/[call_id]/accept?call_id=$1`) in Vercel's
   order: more segments first, then fewer trailing `[param]` segments (a static file name beats a dynamic one);
4. anything else is a 404 (problem+json here).

The function gets the ORIGINAL request path in `scope["path"]`, plus the route's parameters (and any rewrite
parameters its destination does not use) appended to the query string, as Vercel's destination carries them.
Files and folders under `api/` whose name starts with `_` or `.` are not functions (Vercel skips them too).
Each function is imported on first use by file path, its ASGI lifespan started once (as Vercel's Python runtime
does on a cold start), and cached; an import error answers a 500 problem naming the file and is retried on the
next request. Websockets are refused: Vercel functions do not hold them. Every response, the router's own 404s
and 500s included, carries the functions' security headers and X-Request-ID (`lib.http.envelope_headers`).

Crons: the `vercel.json` crons fire on their schedule (UTC) as a real `GET` to this server with
`Authorization: Bearer <CRON_SECRET>` and `User-Agent: vercel-cron/1.0`. On Vercel's Hobby plan a cron runs at
most once a day, so `/api/cron/bill-active-calls` (every minute here and on Pro) is only a sweep: per-call billing
is driven by a QStash callback each minute (`/api/jobs/bill-call`); the sweep catches what was missed.

CLI: `python -m localdev.vercel_router --port 3000 [--no-crons]` (CRON_SECRET from the environment).
Only the standard library is imported at module level, so `lambda_handler.py` can reuse the router cheaply.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PROBLEM_JSON = "application/problem+json"
LIFESPAN_TIMEOUT_S = 30.0  # what Vercel's runtime waits for a function's startup
CRON_TIMEOUT_S = 60.0

log = logging.getLogger("localdev.vercel_router")


class RouteConfigError(ValueError):
    """The api/ tree or vercel.json is something Vercel's build would refuse (or this router can't emulate)."""


class FunctionLoadError(RuntimeError):
    """A function file failed to import or exports no ASGI `app`."""


# --- the api/ tree ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One function: its file (relative to the root), its URL template and its `[param]` names."""

    file: Path
    pattern: str
    params: tuple[str, ...]
    regex: re.Pattern[str]

    @property
    def dynamic(self) -> bool:
        """True when a path segment is a `[param]`."""
        return bool(self.params)

    @property
    def destination(self) -> str:
        """The path Vercel rewrites a dynamic request to (the function's own file path, without `.py`)."""
        return "/" + self.file.with_suffix("").as_posix()

    def url(self, **values: str) -> str:
        """The concrete path for these parameter values (`/api/calls/<id>/accept`)."""
        missing = set(self.params) - set(values)
        if missing:
            raise KeyError(f"{self.file}: no value for {', '.join(sorted(missing))}")
        return re.sub(r"\{([^}]+)\}", lambda m: quote(values[m.group(1)], safe=""), self.pattern)


def _segment_param(segment: str) -> str | None:
    name = segment.removesuffix(".py")
    if len(name) > 2 and name.startswith("[") and name.endswith("]"):
        return name[1:-1]
    return None


def function_files(root: Path) -> list[Path]:
    """Every `api/**.py` file Vercel turns into a function, relative to `root`, sorted."""
    api = root / "api"
    if not api.is_dir():
        return []
    found = []
    for path in api.rglob("*.py"):
        rel = path.relative_to(api)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        found.append(path.relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def _route_for(file: Path) -> Route:
    parts = file.with_suffix("").parts
    params: list[str] = []
    template: list[str] = []
    src: list[str] = []
    for i, part in enumerate(parts):
        name = _segment_param(part)
        last = i == len(parts) - 1
        if name is not None:
            params.append(name)
            template.append("{" + name + "}")
            src.append("([^/]+)")
        elif last and part == "index":
            src.append("(?:/|/index|/index\\.py)?")
        elif last:
            template.append(part)
            # Vercel's dynamic routes also accept `name/` and `name.py` for a static file name.
            src.append(f"({re.escape(part)}/|{re.escape(part)}|{re.escape(part)}\\.py)")
        else:
            template.append(part)
            src.append(re.escape(part))
    pattern = "/" + "/".join(template)
    joined = "/".join(src[:-1]) + src[-1] if parts[-1] == "index" else "/".join(src)
    return Route(file=file, pattern=pattern, params=tuple(params), regex=re.compile("^/" + joined + "$"))


def _trailing_params(file: Path) -> int:
    count = 0
    for part in file.parts:
        count = count + 1 if _segment_param(part) is not None else 0
    return count


def _vercel_order(file: Path) -> tuple[int, int, str]:
    # Vercel's sortFilesBySegmentCount: more segments first, then fewer trailing [param]s, then by name.
    return (-len(file.parts), _trailing_params(file), file.as_posix().lower())


def _conflicts(files: list[Path]) -> list[str]:
    """The errors Vercel's build raises for this set of files (repeated or clashing `[param]` names)."""
    errors = []
    shapes: dict[str, list[Path]] = {}
    for file in files:
        names = [n for n in (_segment_param(p) for p in file.parts) if n is not None]
        if len(names) != len(set(names)):
            errors.append(f"{file}: a [param] name occurs more than once in the path")
        shape = "/".join("1" if _segment_param(p) else p for p in file.with_suffix("").parts)
        shapes.setdefault(shape, []).append(file)
    for same in shapes.values():
        if len(same) > 1:
            errors.append("these files serve the same path: " + ", ".join(map(str, same)))
    for i, a in enumerate(files):
        for b in files[i + 1 :]:
            if _params_clash(a, b):
                errors.append(f"{a} and {b} name the same path segment differently")
    return errors


def _params_clash(a: Path, b: Path) -> bool:
    # Vercel's partiallyMatches: the same position holds [param]s of different names.
    for sa, sb in zip(a.parts, b.parts, strict=False):
        na, nb = _segment_param(sa), _segment_param(sb)
        if sa != sb and (na is None or nb is None):
            return False
        if na != nb:
            return True
    return False


def routes(root: Path = ROOT) -> list[Route]:
    """Every function under `root/api`: static ones first, then dynamic ones in the order Vercel tries them."""
    files = function_files(root)
    errors = _conflicts(files)
    if errors:
        raise RouteConfigError("vercel build would refuse this api/ tree:\n  " + "\n  ".join(errors))
    static = [_route_for(f) for f in files if not any(_segment_param(p) for p in f.parts)]
    dynamic = [_route_for(f) for f in sorted(set(files) - {r.file for r in static}, key=_vercel_order)]
    return static + dynamic


# --- vercel.json ----------------------------------------------------------------------------------------------

_PARAM_TOKEN = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)([*+?]?)$")
_DEST_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)[*+?]?")
_UNSUPPORTED_KEYS = ("routes", "redirects", "headers", "cleanUrls", "trailingSlash")


@dataclass(frozen=True)
class Rewrite:
    """A `vercel.json` rewrite in path-to-regexp's segment syntax (`:name`, `:name?`, `:name*`, `:name+`)."""

    source: str
    destination: str
    regex: re.Pattern[str]
    names: tuple[str, ...]

    @classmethod
    def parse(cls, source: str, destination: str) -> Rewrite:
        """Compile one rewrite; anything beyond whole-segment parameters is refused, not guessed."""
        if not source.startswith("/") or not destination.startswith("/"):
            raise RouteConfigError(
                f"rewrite {source} -> {destination}: only same-deployment paths are emulated"
            )
        if any(ch in source for ch in "()[]{}"):
            raise RouteConfigError(f"rewrite source {source}: regex groups are not emulated")
        pieces: list[str] = []
        names: list[str] = []
        for segment in source.strip("/").split("/") if source != "/" else []:
            m = _PARAM_TOKEN.match(segment)
            if m is None:
                if ":" in segment or "*" in segment:
                    raise RouteConfigError(
                        f"rewrite source {source}: only whole-segment :params are emulated"
                    )
                pieces.append("/" + re.escape(segment))
                continue
            name, modifier = m.groups()
            names.append(name)
            one = "[^/]+?"
            many = f"{one}(?:/{one})*"
            pieces.append(
                {
                    "": f"/(?P<{name}>{one})",
                    "?": f"(?:/(?P<{name}>{one}))?",
                    "*": f"(?:/(?P<{name}>{many}))?",
                    "+": f"/(?P<{name}>{many})",
                }[modifier]
            )
        regex = re.compile("^" + ("".join(pieces) or "/") + "$")
        return cls(source=source, destination=destination, regex=regex, names=tuple(names))

    def apply(self, path: str) -> tuple[str, list[tuple[str, str]]] | None:
        """The destination path and extra query pairs when `path` matches, else None."""
        m = self.regex.match(path)
        if m is None:
            return None
        values = {k: v or "" for k, v in m.groupdict().items()}
        used: set[str] = set()

        def fill(match: re.Match[str]) -> str:
            used.add(match.group(1))
            return values.get(match.group(1), "")

        dest_path, _, dest_query = self.destination.partition("?")
        new_path = re.sub(r"/{2,}", "/", _DEST_PARAM.sub(fill, dest_path)) or "/"
        extra = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in dest_query.split("&") if p]
        pairs: list[tuple[str, str]] = [(k, _DEST_PARAM.sub(fill, v)) for k, v in extra]
        # Vercel passes source params the destination does not use as query parameters.
        pairs += [(k, v) for k, v in values.items() if k not in used and m.group(k) is not None]
        return new_path, pairs


@dataclass(frozen=True)
class CronSchedule:
    """A five-field cron expression (UTC) with numbers, `*`, `*/n`, `a-b`, `a-b/n` and comma lists."""

    expression: str
    fields: tuple[frozenset[int], ...]
    restricted: tuple[bool, ...]

    _RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        """Parse or raise RouteConfigError naming the bad field."""
        parts = expression.split()
        if len(parts) != 5:
            raise RouteConfigError(f"cron {expression!r}: expected 5 fields")
        sets = tuple(
            cls._field(p, lo, hi, expression) for p, (lo, hi) in zip(parts, cls._RANGES, strict=True)
        )
        return cls(expression=expression, fields=sets, restricted=tuple(p != "*" for p in parts))

    @staticmethod
    def _field(text: str, lo: int, hi: int, expression: str) -> frozenset[int]:
        values: set[int] = set()
        for item in text.split(","):
            base, _, step_text = item.partition("/")
            try:
                step = int(step_text) if step_text else 1
                if base == "*":
                    start, end = lo, hi
                elif "-" in base:
                    a, b = base.split("-", 1)
                    start, end = int(a), int(b)
                else:
                    start = int(base)
                    end = hi if step_text else start
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
        if self.restricted[2] and self.restricted[4]:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


@dataclass(frozen=True)
class Cron:
    """A `vercel.json` cron entry."""

    path: str
    schedule: CronSchedule


@dataclass(frozen=True)
class CronRun:
    """What one cron request got back (status None when the request itself failed)."""

    path: str
    status: int | None
    error: str | None = None


def read_vercel_json(root: Path) -> dict[str, Any]:
    """The parsed `vercel.json` (empty when there is none)."""
    path = root / "vercel.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise RouteConfigError("vercel.json must be an object")
    return data


def rewrites(config: dict[str, Any]) -> list[Rewrite]:
    """The rewrites of a parsed vercel.json, compiled, in order."""
    unsupported = [k for k in _UNSUPPORTED_KEYS if k in config]
    if unsupported:
        raise RouteConfigError(
            f"vercel.json keys not emulated by localdev.vercel_router: {', '.join(unsupported)}"
        )
    out = []
    for rule in config.get("rewrites", []):
        if "has" in rule or "missing" in rule:
            raise RouteConfigError(
                f"rewrite {rule.get('source')}: `has`/`missing` conditions are not emulated"
            )
        out.append(Rewrite.parse(rule["source"], rule["destination"]))
    return out


def crons(config: dict[str, Any]) -> list[Cron]:
    """The crons of a parsed vercel.json."""
    return [Cron(path=c["path"], schedule=CronSchedule.parse(c["schedule"])) for c in config.get("crons", [])]


# --- loading functions ----------------------------------------------------------------------------------------


def module_name_for(file: Path, root: Path = ROOT) -> str:
    """A unique, importable-looking module name for a function file (names may hold `-` and `[ ]`)."""
    stem = re.sub(r"[^0-9A-Za-z_]", "_", file.with_suffix("").as_posix())
    digest = hashlib.sha1(str(root.resolve() / file).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"_vercel_fn_{stem}_{digest}"


def load_function(path: Path, *, root: Path = ROOT, module_name: str | None = None) -> ModuleType:
    """Import one function file by path (never as a package) with `root` importable, as Vercel does."""
    root_str = str(root.resolve())
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    rel = path.resolve().relative_to(root.resolve()) if path.is_absolute() else path
    name = module_name or module_name_for(rel, root)
    spec = importlib.util.spec_from_file_location(name, root / rel)
    if spec is None or spec.loader is None:
        raise FunctionLoadError(f"{rel}: not importable")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def app_of(module: ModuleType, file: Path) -> ASGIApp:
    """The module's top-level ASGI `app`, or FunctionLoadError."""
    app = getattr(module, "app", None)
    if app is None or not callable(app):
        raise FunctionLoadError(f"{file} exports no ASGI `app`")
    return app


@dataclass
class _Function:
    app: ASGIApp
    lifespan: asyncio.Task[None] | None = None
    lifespan_inbox: asyncio.Queue[Message] | None = None
    lifespan_outbox: asyncio.Queue[Message] | None = None
    started: asyncio.Future[None] | None = None


# --- the router ---------------------------------------------------------------------------------------------------


@dataclass
class Resolution:
    """Which function answers a path, and the query pairs its destination adds."""

    route: Route
    query: list[tuple[str, str]] = field(default_factory=list)


class VercelRouter:
    """The ASGI app: Vercel's routing over every function, their lifespans, and the crons."""

    def __init__(
        self,
        root: Path,
        *,
        cron_secret: str | None,
        fire_crons: bool,
        loader: Callable[[Route], ASGIApp] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.root = root.resolve()
        config = read_vercel_json(self.root)
        self.routes = routes(self.root)
        self.rewrites = rewrites(config)
        self.crons = crons(config)
        self.cron_secret = cron_secret
        self.fire_crons_enabled = fire_crons
        self.base_url: str | None = None  # where crons send their GET; set once the server is listening
        self._loader = loader or self._load_from_file
        self._clock = clock or (lambda: datetime.now(UTC))
        self._filesystem: dict[str, Route] = {}
        for route in self.routes:
            self._filesystem[route.destination] = route
            if route.file.stem == "index":
                self._filesystem[route.destination.removesuffix("/index") or "/"] = route
        self._functions: dict[Path, _Function] = {}
        self._import_lock = threading.Lock()
        self._cron_task: asyncio.Task[None] | None = None
        self._cron_rounds: set[asyncio.Task[None]] = set()
        self._serving = False  # inside a server's lifespan (uvicorn, TestClient as a context manager)
        self._atexit_registered = False

    # routing

    def resolve(self, path: str) -> Resolution | None:
        """Walk Vercel's routing table for `path`: filesystem, rewrites, dynamic routes; None is a 404."""
        current: str = path
        query: list[tuple[str, str]] = []
        if (hit := self._filesystem.get(current)) is not None:
            return Resolution(hit, query)
        for rewrite in self.rewrites:
            applied = rewrite.apply(current)
            if applied is None:
                continue
            current, pairs = applied
            query += pairs
            if (hit := self._filesystem.get(current)) is not None:
                return Resolution(hit, query)
        for route in self.routes:
            if not route.dynamic:
                continue
            m = route.regex.match(current)
            if m is not None:
                return Resolution(route, query + list(zip(route.params, m.groups(), strict=False)))
        return None

    # ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await receive()
            await send(
                {"type": "websocket.close", "code": 1008, "reason": "Vercel functions hold no websockets"}
            )
        else:
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The functions' own envelope (lib/http): every response that leaves here, the router's own 404s and 500s
        # included, carries the same security headers and X-Request-ID as a function's. Imported on first use.
        from lib.http import envelope_headers, request_id_of

        request_id = request_id_of(scope)
        started = False

        async def enveloped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = dict(message, headers=envelope_headers(message.get("headers", []), request_id))
            await send(message)

        try:
            await self._route(scope, receive, enveloped_send, request_id)
        except Exception as exc:
            log.exception("router failed on %s", scope["path"])
            if not started:
                detail = f"The router failed: {type(exc).__name__}"
                await _problem(
                    enveloped_send, 500, "ROUTER_ERROR", detail, scope["path"], requestId=request_id
                )

    async def _route(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        path = scope["path"]
        if path in _DOC_PATHS and scope.get("method") in ("GET", "HEAD"):
            await self._docs(path, send)
            return
        resolution = self.resolve(path)
        if resolution is None:
            await _problem(send, 404, "NOT_FOUND", f"No function serves {path}", path, requestId=request_id)
            return
        file = resolution.route.file
        try:
            function = await self._function(resolution.route)
        except Exception as exc:
            log.exception("function %s failed to load", file)
            detail = f"{file} failed to import: {type(exc).__name__}: {exc}"
            trace = traceback.format_exception_only(type(exc), exc)
            await _problem(
                send,
                500,
                "FUNCTION_IMPORT_ERROR",
                detail,
                path,
                requestId=request_id,
                file=str(file),
                exception=trace,
            )
            return
        fn_scope = self._function_scope(scope, resolution, request_id)
        await self._invoke(function.app, fn_scope, receive, send, file, request_id)

    def _function_scope(self, scope: Scope, resolution: Resolution, request_id: str | None = None) -> Scope:
        query = scope.get("query_string", b"")
        if resolution.query:
            added = urlencode(resolution.query, quote_via=quote).encode()
            query = query + b"&" + added if query else added
        client = scope.get("client") or ("127.0.0.1", 0)
        host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"127.0.0.1")
        # Vercel overwrites these with what its edge saw; a client cannot spoof them.
        platform_headers = {
            b"x-real-ip": str(client[0]).encode(),
            b"x-forwarded-for": str(client[0]).encode(),
            b"x-vercel-forwarded-for": str(client[0]).encode(),
            b"x-forwarded-host": host,
            b"x-forwarded-proto": str(scope.get("scheme", "http")).encode(),
            b"x-vercel-id": f"dev1::{uuid.uuid4().hex[:20]}".encode(),
        }
        if request_id is not None:  # the function logs and answers with the id the router's own answers use
            platform_headers[b"x-request-id"] = request_id.encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k not in platform_headers]
        headers += list(platform_headers.items())
        # Vercel hands functions no lifespan state of the server's.
        fn_scope = {k: v for k, v in scope.items() if k != "state"}
        fn_scope.update(query_string=query, headers=headers, root_path="")
        return fn_scope

    async def _invoke(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, file: Path, request_id: str
    ) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, receive, tracking_send)
        except Exception as exc:
            # On Vercel an unhandled crash is a 500 FUNCTION_INVOCATION_FAILED, and the next request still works.
            log.exception("function %s raised", file)
            if not started:
                detail = f"{file} raised {type(exc).__name__}: {exc}"
                await _problem(
                    send,
                    500,
                    "FUNCTION_INVOCATION_FAILED",
                    detail,
                    scope["path"],
                    requestId=request_id,
                    file=str(file),
                )

    # function loading and lifespans

    def _load_from_file(self, route: Route) -> ASGIApp:
        return app_of(load_function(route.file, root=self.root), route.file)

    async def _function(self, route: Route) -> _Function:
        function = self._functions.get(route.file)
        if function is None:
            with self._import_lock:
                function = self._functions.get(route.file)
                if function is None:
                    function = _Function(app=self._loader(route))
                    self._functions[route.file] = function
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
        if reply not in done:
            reply.cancel()
            task.cancel()  # no lifespan support (or too slow): Vercel proceeds without it, and so do we
            return
        message = reply.result()
        if message.get("type") != "lifespan.startup.complete":
            log.error("%s lifespan startup failed: %s", file, message.get("message", ""))
            task.cancel()
            return
        function.lifespan, function.lifespan_inbox, function.lifespan_outbox = task, inbox, outbox
        if not self._serving and not self._atexit_registered:
            atexit.register(self._stop_lifespans_at_exit)
            self._atexit_registered = True

    async def _stop_lifespan(self, file: Path, function: _Function) -> None:
        task, inbox, outbox = function.lifespan, function.lifespan_inbox, function.lifespan_outbox
        function.lifespan = None
        if task is None or inbox is None or outbox is None or task.done():
            return
        await inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(outbox.get(), timeout=10)
        except TimeoutError:
            log.warning("%s lifespan shutdown timed out", file)
            task.cancel()

    async def _stop_lifespans(self) -> None:
        loop = asyncio.get_running_loop()
        for file, function in list(self._functions.items()):
            if function.lifespan is not None and function.lifespan.get_loop() is loop:
                await self._stop_lifespan(file, function)

    def _stop_lifespans_at_exit(self) -> None:
        # Without a server lifespan (Mangum's lifespan="off") nothing else stops them; Vercel's runtime does the same.
        for file, function in list(self._functions.items()):
            task = function.lifespan
            if task is None or task.done() or task.get_loop().is_closed() or task.get_loop().is_running():
                continue
            with contextlib.suppress(Exception):
                task.get_loop().run_until_complete(self._stop_lifespan(file, function))

    async def _docs(self, path: str, send: Send) -> None:
        """The merged OpenAPI document and its docs page (local only: Vercel serves no such route)."""
        from localdev import openapi  # first build imports every function: only when someone asks

        try:
            if path.endswith(".json"):
                doc = await asyncio.to_thread(openapi.openapi_document, self.root)
                raw, kind = json.dumps(doc).encode(), b"application/json"
            else:
                html = await asyncio.to_thread(openapi.docs_html, self.root)
                raw, kind = html.encode(), b"text/html; charset=utf-8"
        except Exception as exc:
            log.exception("OpenAPI document failed to build")
            await _problem(send, 500, "OPENAPI_BUILD_ERROR", f"{type(exc).__name__}: {exc}", path)
            return
        headers = [(b"content-type", kind), (b"content-length", str(len(raw)).encode())]
        if kind.startswith(b"text/html"):
            headers.append((b"content-security-policy", _DOCS_CSP))  # the page's own <style>, nothing else
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._serving = True
                if self.fire_crons_enabled and self.crons:
                    self._cron_task = asyncio.create_task(self._cron_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in [self._cron_task, *self._cron_rounds]:
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                await self._stop_lifespans()
                self._serving = False
                await send({"type": "lifespan.shutdown.complete"})
                return

    # crons

    async def _cron_loop(self) -> None:
        while True:
            now = self._clock()
            next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            await asyncio.sleep(max(0.0, (next_minute - now).total_seconds()))
            # Each round runs on its own, as on Vercel: a slow cron never delays the next minute's.
            round_ = asyncio.create_task(self._cron_round(next_minute))
            self._cron_rounds.add(round_)
            round_.add_done_callback(self._cron_rounds.discard)

    async def _cron_round(self, at: datetime) -> None:
        try:
            await self.fire_crons(at)
        except Exception:
            log.exception("cron round at %s failed", at.isoformat())

    async def fire_crons(self, at: datetime) -> list[CronRun]:
        """Send the GET of every cron due in the minute `at` to this server; what each got back."""
        due = [c for c in self.crons if c.schedule.matches(at)]
        if not due:
            return []
        if self.base_url is None:
            log.warning("crons due at %s not sent: the router does not know its own URL yet", at.isoformat())
            return []
        import httpx  # only the cron sender needs it

        headers = {"user-agent": "vercel-cron/1.0"}
        if self.cron_secret:
            headers["authorization"] = f"Bearer {self.cron_secret}"
        async with httpx.AsyncClient(base_url=self.base_url, timeout=CRON_TIMEOUT_S) as client:

            async def one(cron: Cron) -> CronRun:
                try:
                    response = await client.get(cron.path, headers=headers)
                except httpx.HTTPError as exc:
                    return CronRun(cron.path, None, f"{type(exc).__name__}: {exc}")
                return CronRun(cron.path, response.status_code)

            runs = list(await asyncio.gather(*(one(c) for c in due)))
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


async def _run_lifespan(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    with contextlib.suppress(Exception):  # an app without lifespan support raises here; that means "none"
        await app(scope, receive, send)


_DOCS_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_DOC_PATHS = frozenset({"/api/openapi.json", "/api/v1/openapi.json", "/api/docs", "/api/v1/docs"})


async def _problem(send: Send, status: int, code: str, detail: str, instance: str, **extra: Any) -> None:
    titles = {404: "Not Found", 500: "Internal Server Error"}
    body = {
        "type": "about:blank",
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": detail,
        "error": detail,
        "message": detail,
        "code": code,
        "instance": instance,
        **extra,
    }
    raw = json.dumps(body).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def build_app(
    root: Path = ROOT,
    *,
    cron_secret: str | None,
    fire_crons: bool,
    loader: Callable[[Route], ASGIApp] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> VercelRouter:
    """The router over `root/api` (`loader` swaps how a function's app is obtained; `clock` drives the crons)."""
    return VercelRouter(root, cron_secret=cron_secret, fire_crons=fire_crons, loader=loader, clock=clock)


# --- serving --------------------------------------------------------------------------------------------------


@dataclass
class Running:
    """A router listening on 127.0.0.1 in a background thread."""

    url: str
    router: VercelRouter
    loop: asyncio.AbstractEventLoop

    def fire_crons(self, at: datetime, timeout_s: float = 30.0) -> list[CronRun]:
        """Fire the crons due at `at` now, from the server's own loop (real GETs to itself)."""
        future = asyncio.run_coroutine_threadsafe(self.router.fire_crons(at), self.loop)
        return future.result(timeout=timeout_s)


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

    def serve() -> None:
        async def main() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve()

        asyncio.run(main())

    thread = threading.Thread(target=serve, name="vercel-router", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the Vercel router did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    router.base_url = f"http://{HOST}:{bound}"
    try:
        yield Running(url=router.base_url, router=router, loop=loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def main(argv: list[str] | None = None) -> int:
    """CLI: serve every function on 127.0.0.1:PORT until SIGTERM/SIGINT."""
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

    config = uvicorn.Config(router, host=HOST, port=args.port, log_level=args.log_level, lifespan="on")
    server = Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()[1]
            router.base_url = f"http://{HOST}:{bound}"
            print(f"ready {router.base_url}", flush=True)
            log.info(
                "%d functions, %d rewrites, crons %s", len(router.routes), len(router.rewrites), args.crons
            )
        await task

    asyncio.run(serve())
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())

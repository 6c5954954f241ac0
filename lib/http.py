"""create_app(): what every function shares (errors, request id, logs, CORS, headers, limits, Sentry, paths)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lib import observability
from lib.config import get_settings
from lib.errors import PROBLEM_JSON, AppError, PayloadTooLarge, Unprocessable, problem_body

# Which origins and URLs are ours, and the canonical API path: defined once in lib.urls (domains import it there).
from lib.urls import canonical_path, is_allowed_origin

RateBucket = Literal["auth", "payment", "default"]

log = logging.getLogger("digis.access")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains; preload"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
CORS_HEADERS = ["Content-Type", "Authorization", "X-Request-ID", "Idempotency-Key"]
EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Idempotency-Replayed",
]
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class EdgeCache:
    """How long Vercel's CDN may serve a public GET's 2xx answer without invoking the function.

    `per_viewer=False`: the answer is identical for everyone (the token never changes it), always public.
    `per_viewer=True`: an optional signed-in viewer changes the answer (e.g. "am I following"): public only when
    the request carries no Authorization header, else `private, no-store`; `Vary: Authorization` either way, so
    the CDN never hands the anonymous copy to a signed-in viewer. Errors are never cached.
    """

    s_maxage: int
    stale_while_revalidate: int
    per_viewer: bool = False

    def header_for(self, scope: Scope) -> tuple[str, str | None]:
        """(Cache-Control, Vary or None) for this request."""
        if self.per_viewer and _header(scope, b"authorization") is not None:
            return "private, no-store", "Authorization"
        public = f"public, max-age=0, s-maxage={self.s_maxage}, stale-while-revalidate={self.stale_while_revalidate}"
        return public, "Authorization" if self.per_viewer else None


def create_app(
    *,
    rate_limit: RateBucket | None = "default",
    title: str = "Digis API",
    edge_cache: EdgeCache | None = None,
) -> FastAPI:
    """A function's ASGI app with the platform's behaviour; add exactly one route at its own path."""
    settings = get_settings()
    observability.setup()
    dependencies = [_rate_limit_dependency(rate_limit)] if rate_limit else []
    app = FastAPI(
        title=title,
        version=settings.app_version,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=dependencies,
    )
    app.add_exception_handler(AppError, _app_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)  # type: ignore[arg-type]
    # Added innermost first: paths and body limit, then CORS, then the outer envelope.
    app.add_middleware(_PathAndBodyMiddleware, max_body=settings.max_body_bytes)
    if settings.origins:
        app.add_middleware(
            _CORSMiddleware,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            allow_credentials=True,
            max_age=600,
        )
    app.add_middleware(_EnvelopeMiddleware, edge_cache=edge_cache)
    return app


class _CORSMiddleware(CORSMiddleware):
    """Starlette's CORS with our own origin check."""

    def is_allowed_origin(self, origin: str) -> bool:
        return is_allowed_origin(origin)


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem+json response."""
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _instance(request: Request) -> str:
    return str(request.scope.get("state", {}).get("original_path") or request.url.path)


async def _app_error_handler(request: Request, exc: AppError) -> JSONResponse:
    body = exc.to_problem(instance=_instance(request), request_id=_request_id(request))
    return problem_response(exc.status, body, exc.headers)


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        fields.append(
            {"field": ".".join(loc) or "body", "message": err.get("msg", "invalid"), "type": err.get("type")}
        )
    names = ", ".join(sorted({f["field"] for f in fields})) or "the request"
    body = problem_body(
        422,
        "VALIDATION_ERROR",
        f"Invalid value for {names}",
        instance=_instance(request),
        request_id=_request_id(request),
        errors=fields,
    )
    return problem_response(422, body)


async def _http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 400: "BAD_REQUEST", 401: "UNAUTHORIZED"}
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route for {request.method} {_instance(request)}"
    body = problem_body(
        exc.status_code,
        codes.get(exc.status_code, "HTTP_ERROR"),
        detail,
        instance=_instance(request),
        request_id=_request_id(request),
    )
    return problem_response(exc.status_code, body, dict(exc.headers or {}))


_SAFE_METHODS = frozenset({"GET", "HEAD"})


def _rate_limit_dependency(bucket: RateBucket) -> Any:
    def check(request: Request) -> dict[str, str]:
        # Imported here so functions without limits never pay for them.
        from lib import presence
        from lib.auth import peek_user_uuid
        from lib.ratelimit import enforce

        user_id = peek_user_uuid(request)
        # The presence heartbeat rides along in the limiter's round trip rather than costing its own.
        also = [presence.heartbeat_command(user_id)] if user_id and presence.due(user_id) else None
        return enforce(request, bucket, str(user_id) if user_id else None, also)

    async def enforce_rate_limit(request: Request) -> AsyncIterator[None]:
        """Count the request before a write runs; for a read, count it while the read runs (its Redis round trip
        overlaps the database's) and answer 429 instead of the read's answer when the limit refuses it."""
        if request.method not in _SAFE_METHODS:
            _add_response_headers(request, await run_in_threadpool(check, request))
            yield
            return
        verdict = asyncio.ensure_future(run_in_threadpool(check, request))
        try:
            yield
        except BaseException:
            if not verdict.done():
                await asyncio.wait([verdict])
            refused = None if verdict.cancelled() else verdict.exception()
            if isinstance(refused, AppError):
                raise refused from None  # refused: the 429 wins, as when the limit ran first
            raise
        _add_response_headers(request, await verdict)

    return Depends(enforce_rate_limit, scope="function")


def _add_response_headers(request: Request, headers: dict[str, str]) -> None:
    extra = request.scope.setdefault("state", {}).setdefault("response_headers", {})
    extra.update(headers)


class _PathAndBodyMiddleware:
    """Serve both path forms and refuse bodies over the limit with 413."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        original = scope["path"]
        path = canonical_path(original, scope.get("query_string", b""))
        if path != original:
            scope = dict(scope, path=path, raw_path=path.encode())
        scope.setdefault("state", {}).setdefault("original_path", original)
        # PostgreSQL text cannot hold NUL: refuse it at the edge as bad input, never let it become a 500.
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            raise Unprocessable(
                "The request contains a NUL character",
                errors=[{"field": "path" if "\x00" in path else "query", "message": "NUL character"}],
            )

        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise PayloadTooLarge(f"Request body over {self.max_body} bytes")
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and not length:
            await self.app(scope, receive, send)
            return
        # Read the (bounded) body up front so an oversized chunked body is a 413, not a parse error.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body:
                raise PayloadTooLarge(f"Request body over {self.max_body} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _is_text_body(scope) and (b"\x00" in body or b"\\u0000" in body):
            raise Unprocessable(
                "The request body contains a NUL character",
                errors=[{"field": "body", "message": "NUL character"}],
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_text_body(scope: Scope) -> bool:
    kind = (_header(scope, b"content-type") or "").lower()
    return "json" in kind or "x-www-form-urlencoded" in kind


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def request_id_of(scope: Scope) -> str:
    """The request's id: the client's X-Request-ID when it is well-formed, else a new one."""
    incoming = _header(scope, b"x-request-id")
    return incoming if incoming and _REQUEST_ID_OK.fullmatch(incoming) else uuid.uuid4().hex


def envelope_headers(headers: Iterable[Sequence[bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """`headers` plus the security headers and X-Request-ID they do not set themselves (every response has them)."""
    out = [(bytes(k), bytes(v)) for k, v in headers]
    names = {k.lower() for k, _ in out}
    out.extend(h for h in SECURITY_HEADERS if h[0] not in names)
    if b"x-request-id" not in names:
        out.append((b"x-request-id", request_id.encode()))
    return out


class _EnvelopeMiddleware:
    """Request id, security headers, one JSON log line, and a problem 500 for anything unexpected."""

    def __init__(self, app: ASGIApp, edge_cache: EdgeCache | None = None) -> None:
        self.app = app
        self.edge_cache = edge_cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state.setdefault("original_path", scope["path"])
        status_holder = {"status": 500, "started": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = envelope_headers(message.get("headers", []), request_id)
                names = {k.lower() for k, _ in headers}
                for name, value in state.get("response_headers", {}).items():
                    if name.lower().encode() not in names:
                        headers.append((name.encode("latin-1"), str(value).encode("latin-1")))
                if self.edge_cache is not None and scope.get("method") in ("GET", "HEAD"):
                    headers = _with_cache_headers(headers, self.edge_cache, scope, message["status"])
                message = dict(message, headers=headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if isinstance(exc, AppError):
                body = exc.to_problem(instance=state["original_path"], request_id=request_id)
                status, extra = exc.status, exc.headers
            else:
                observability.capture_exception(exc, request_id=request_id)
                status, extra = 500, {}
                body = problem_body(
                    500,
                    "INTERNAL_ERROR",
                    "Something went wrong on our side; it has been reported.",
                    instance=state["original_path"],
                    request_id=request_id,
                )
            if not status_holder["started"]:
                response = problem_response(status, body, extra)
                await response(scope, receive, send_with_headers)
        finally:
            _log_request(scope, state, status_holder["status"], started)


def _with_cache_headers(
    headers: list[tuple[bytes, bytes]], edge_cache: EdgeCache, scope: Scope, status: int
) -> list[tuple[bytes, bytes]]:
    cache_control, vary = edge_cache.header_for(scope)
    if not 200 <= status < 300:
        cache_control = "private, no-store"  # an error (a 429, a 503) must never be served from the edge
    out = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
    out.append((b"cache-control", cache_control.encode()))
    if vary:
        kept = []
        for k, v in out:
            if k.lower() == b"vary":
                vary = f"{v.decode('latin-1')}, {vary}"
            else:
                kept.append((k, v))
        out = [*kept, (b"vary", vary.encode("latin-1"))]
    return out


def _log_request(scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
    line = {
        "level": "error" if status >= 500 else "info",
        "msg": "request",
        "method": scope.get("method"),
        "path": state.get("original_path"),
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "requestId": state.get("request_id"),
    }
    if state.get("user_id"):
        line["userId"] = state["user_id"]
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps(line, separators=(",", ":")))

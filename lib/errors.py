"""The one error family, rendered as RFC 9457 problem details.

AppError
 ├── BadRequest           400
 ├── Unauthorized         401  "Invalid token"
 ├── PaymentRequired      402  INSUFFICIENT_TOKENS
 ├── Forbidden            403
 ├── NotFound             404
 ├── MethodNotAllowed     405
 ├── Conflict             409
 ├── PayloadTooLarge      413
 ├── Unprocessable        422  VALIDATION_ERROR
 ├── RateLimited          429
 └── ServiceUnavailable   503
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://docs.digis.cc/problems/"


class AppError(Exception):
    """An expected outcome a client can act on; never a stack trace."""

    status: int = 400
    code: str = "BAD_REQUEST"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self, *, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        """The problem+json body, with the members the frontend reads."""
        return problem_body(
            self.status, self.code, self.detail, instance=instance, request_id=request_id, **self.extra
        )


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build an RFC 9457 body plus `error`/`message`/`code`."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
        "message": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["requestId"] = request_id
    body.update(extra)
    return body


class BadRequest(AppError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(AppError):
    status, code = 401, "UNAUTHORIZED"

    def __init__(self, detail: str = "Invalid token", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class PaymentRequired(AppError):
    status, code = 402, "INSUFFICIENT_TOKENS"


class Forbidden(AppError):
    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, code = 404, "NOT_FOUND"


class MethodNotAllowed(AppError):
    status, code = 405, "METHOD_NOT_ALLOWED"


class Conflict(AppError):
    status, code = 409, "CONFLICT"


class PayloadTooLarge(AppError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class Unprocessable(AppError):
    status, code = 422, "VALIDATION_ERROR"


class RateLimited(AppError):
    status, code = 429, "RATE_LIMITED"


class ServiceUnavailable(AppError):
    status, code = 503, "SERVICE_UNAVAILABLE"

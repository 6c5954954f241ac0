"""What every function shares in the merged OpenAPI document (lib/routing/openapi.py): the security rules read
from each operation's FastAPI dependency tree, the security schemes, the problem+json schemas, the rate-limit
headers and the document's description."""

from __future__ import annotations

from typing import Any

SCHEMA_REF = "#/components/schemas/"
PROBLEM_JSON = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BEARER = "supabaseJwt"
CRON = "cronSecret"
QSTASH = "qstashSignature"

# Dependency (module.qualname) -> the security scheme an operation depending on it needs.
SECURITY_RULES: dict[str, str] = {
    "lib.auth.current_user": BEARER,
    "lib.auth.claims_for": BEARER,
    "lib.jobs.verify_cron": CRON,
    "lib.jobs.verify_qstash_job": QSTASH,
}
# Dependency -> the 403 it adds (on top of the 401 of the scheme it implies).
FORBIDDEN_RULES: dict[str, str] = {
    "lib.auth.current_creator": "Creators only (`code: CREATOR_ONLY`).",
    "lib.auth.current_admin": "Admins only (`code: ADMIN_ONLY`).",
}
# Dependency -> a scheme the operation accepts but does not need (it answers anonymous requests too).
OPTIONAL_RULES: dict[str, str] = {
    "lib.auth.peek_user_id": BEARER,
    "lib.auth.peek_user_uuid": BEARER,
}
RATE_LIMIT_DEPENDENCY = "lib.http._rate_limit_dependency.<locals>.enforce_rate_limit"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Supabase access token (`Authorization: Bearer <access_token>`): HS256 with the project's "
        "JWT secret or ES256/RS256 from its JWKS; `aud` must be `authenticated`. Its `sub` is the user id; the "
        "first authenticated request creates the user.",
    },
    CRON: {
        "type": "http",
        "scheme": "bearer",
        "description": "Vercel Cron: `Authorization: Bearer <CRON_SECRET>`.",
    },
    QSTASH: {
        "type": "apiKey",
        "in": "header",
        "name": "Upstash-Signature",
        "description": "QStash callbacks: an HS256 JWT over the destination URL and the raw body, signed with "
        "QSTASH_CURRENT_SIGNING_KEY or QSTASH_NEXT_SIGNING_KEY.",
    },
}

_TEXT = {"type": "string"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details plus the members the frontend reads (`error`, `message`, `code`).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "error", "message", "code"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the problem type."},
        "title": _TEXT,
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": _TEXT,
        "error": {"type": "string", "description": "Human text (the same as `detail`)."},
        "message": {"type": "string", "description": "Human text (the same as `detail`)."},
        "code": {"type": "string", "description": "Stable machine code, e.g. `INSUFFICIENT_TOKENS`."},
        "instance": {"type": "string", "description": "The request path."},
        "requestId": _TEXT,
    },
    "additionalProperties": True,
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "A 422 problem listing every offending field.",
    "allOf": [
        {"$ref": SCHEMA_REF + "Problem"},
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": _TEXT,
                            "message": _TEXT,
                            "type": {"type": ["string", "null"]},
                        },
                    },
                }
            },
        },
    ],
}
COMMON_SCHEMAS = {"Problem": PROBLEM_SCHEMA, "ValidationProblem": VALIDATION_PROBLEM_SCHEMA}


RATE_LIMIT_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("Retry-After", "Seconds until a request may succeed."),
        ("RateLimit-Limit", "Requests allowed in the window."),
        ("RateLimit-Remaining", "Requests left in the window."),
        ("RateLimit-Reset", "Seconds until the window resets."),
    )
}

DESCRIPTION = """\
The Digis API: one Vercel Python function per route.

**Base paths.** Every path below is shown under `/api/...`; the same function also serves it under `/api/v1/...`
(the frontend's production base URL), e.g. `/api/v1/tokens/balance` = `/api/tokens/balance`.

**Authentication.** Operations marked with `supabaseJwt` need `Authorization: Bearer <Supabase access token>` and
answer 401 (`Invalid token`) without a valid one. The rule, applied from each function's FastAPI dependency tree: an
operation is marked when it depends on `lib.auth.current_user` or `lib.auth.claims_for` (`CurrentUser`,
`CreatorUser`, `AdminUser`, `Claims`); one that only peeks at an optional token lists `{}` as an alternative;
creator- and admin-only operations also document a 403. Cron routes take `Authorization: Bearer <CRON_SECRET>`
(`cronSecret`), QStash job callbacks an `Upstash-Signature` (`qstashSignature`).

**Errors.** Every error is `application/problem+json` (`Problem`); validation failures are 422
(`ValidationProblem`, listing the fields). Expected outcomes (no balance, busy creator, not yours) are 4xx with a
stable `code`; `4XX` on an operation covers the ones it does not list.

**Rate limits.** 429 with `Retry-After` and `RateLimit-*` headers (`x-rate-limit` names the bucket: `auth`
20/min, `payment` 10/min, `default` 300/min).
"""

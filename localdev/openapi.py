"""One OpenAPI 3.1 document for every `api/**.py` function, and a self-contained HTML page describing it.

Each function is a FastAPI app built with `openapi_url=None` (nothing is served), but `app.openapi()` still builds
its schema. This module loads every function by file path (as Vercel does), merges their paths and component
schemas, and adds what the functions share through `lib.http.create_app` and `lib.auth`:

- problem+json error responses (`Problem`, `ValidationProblem`) on every operation;
- security schemes, marked per operation from its FastAPI dependency tree (see SECURITY_RULES): an operation needs
  the Supabase bearer token exactly when `lib.auth.current_user` or `lib.auth.claims_for` is among its dependencies
  (`CurrentUser`, `CreatorUser`, `AdminUser` and `Claims` all are); `lib.auth.peek_user_id` as a dependency makes
  the token optional; `lib.jobs.verify_cron` means the CRON_SECRET bearer and `lib.jobs.verify_qstash_job` the
  Upstash-Signature header. The rate limiter's own token peek does not count (it never refuses anyone);
- 429 with the rate-limit headers where `create_app(rate_limit=...)` installed a limiter.

Component schemas with the same name and the same content are shared; same name, different content: every variant
is renamed `<Name>__<function slug>` (the slug of the first function file, in sorted order, that defines it), so
the names do not depend on which other functions exist. Unreferenced schemas are dropped.

The router can serve `openapi_document()` as `/api/openapi.json` and `docs_html()` as `/api/docs`.
CLI: `python -m localdev.openapi [--out FILE] [--html FILE]` (scripts/openapi).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import html
import inspect
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localdev.vercel_router import ROOT, function_files, load_function, module_name_for

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
_COMMON_SOURCE = ""  # sorts before every function file

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


class OpenApiBuildError(RuntimeError):
    """Some function could not be loaded or does not describe itself."""


@dataclass
class _Operation:
    """One (path, method) from one function, with what its dependencies say."""

    file: str
    path: str
    method: str
    spec: dict[str, Any]
    schemes: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    rate_limit: str | None = None


@dataclass
class _Function:
    """One function's own document and operations."""

    file: str
    doc: dict[str, Any]
    operations: list[_Operation]

    @property
    def schemas(self) -> dict[str, Any]:
        """Its components/schemas."""
        return dict(self.doc.get("components", {}).get("schemas", {}))


# --- loading --------------------------------------------------------------------------------------------------


def _dotted(call: Any) -> str:
    return f"{getattr(call, '__module__', '')}.{getattr(call, '__qualname__', '')}"


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    """Every callable in a FastAPI dependant tree (the route's own endpoint excluded)."""
    stack = list(getattr(dependant, "dependencies", []))
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            yield dep.call
        stack.extend(dep.dependencies)


def _rate_bucket(call: Any) -> str | None:
    # create_app's limiter is a closure over the bucket name.
    try:
        bucket = inspect.getclosurevars(call).nonlocals.get("bucket")
    except (TypeError, ValueError):
        return None
    return str(bucket) if bucket else None


def canonical_path(path: str) -> str:
    """`/api/v1/x` -> `/api/x` (the document lists each route once)."""
    return "/api" + path[len("/api/v1") :] if path == "/api/v1" or path.startswith("/api/v1/") else path


def _function_for(app: Any, file: str) -> _Function:
    from fastapi.routing import APIRoute

    if not callable(getattr(app, "openapi", None)):
        raise OpenApiBuildError(f"{file}: `app` is not a FastAPI app (no .openapi())")
    with warnings.catch_warnings():
        # One route with several methods shares FastAPI's operation id; build_document makes ids unique.
        warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
        doc = copy.deepcopy(app.openapi())
    routes: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                routes[(route.path_format, method.lower())] = route
    operations = []
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method not in item:
                continue
            op = _Operation(file=file, path=canonical_path(path), method=method, spec=item[method])
            route = routes.get((path, method))
            calls = list(_dependency_calls(route.dependant)) if route is not None else []
            for call in calls:
                name = _dotted(call)
                if name in SECURITY_RULES and SECURITY_RULES[name] not in op.schemes:
                    op.schemes.append(SECURITY_RULES[name])
                if name in OPTIONAL_RULES and OPTIONAL_RULES[name] not in op.optional:
                    op.optional.append(OPTIONAL_RULES[name])
                if name in FORBIDDEN_RULES:
                    op.forbidden.append(FORBIDDEN_RULES[name])
                if name == RATE_LIMIT_DEPENDENCY:
                    op.rate_limit = _rate_bucket(call) or "default"
            operations.append(op)
    return _Function(file=file, doc=doc, operations=operations)


def load_functions(root: Path = ROOT) -> list[_Function]:
    """Every function under `root/api`, loaded by path under a module name of its own (sorted by file)."""
    loaded, errors = [], []
    for rel in function_files(root):
        name = "_openapi" + module_name_for(rel)
        try:
            module = sys.modules.get(name) or load_function(rel, root=root, module_name=name)
            loaded.append(_function_for(module.app, rel.as_posix()))
        except Exception as exc:
            errors.append(f"{rel.as_posix()}: {type(exc).__name__}: {exc}")
    if errors:
        raise OpenApiBuildError("could not describe every function:\n  " + "\n  ".join(errors))
    return loaded


# --- component names ------------------------------------------------------------------------------------------


def _walk_refs(node: Any, rename: Callable[[str], str]) -> Any:
    """A copy of `node` with every `#/components/schemas/X` ref renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                out[key] = SCHEMA_REF + rename(value[len(SCHEMA_REF) :])
            else:
                out[key] = _walk_refs(value, rename)
        return out
    if isinstance(node, list):
        return [_walk_refs(v, rename) for v in node]
    return node


def _fingerprints(schemas: dict[str, Any]) -> dict[str, str]:
    """A content hash per schema that includes what its refs point to (so equal text with different targets differ)."""
    done: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> str:
        if name in done:
            return done[name]
        if name in path or name not in schemas:
            return f"ref:{name}"  # a cycle (or a dangling ref) is identified by name alone

        def resolve(ref: str) -> str:
            return visit(ref, (*path, name))

        text = json.dumps(_walk_refs(schemas[name], resolve), sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        done[name] = digest
        return digest

    for schema_name in schemas:
        visit(schema_name, ())
    return done


def slug(file: str) -> str:
    """`api/calls/[call_id]/accept.py` -> `calls_call_id_accept`."""
    stem = file.removeprefix("api/").removesuffix(".py")
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z]", "_", stem)).strip("_")


def _schema_names(sources: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], str]:
    """(source, schema name) -> the merged name, per the rule in the module docstring."""
    variants: dict[str, dict[str, list[str]]] = {}
    for source, schemas in sources:
        for name, fp in _fingerprints(schemas).items():
            variants.setdefault(name, {}).setdefault(fp, []).append(source)
    taken = {name for name, by_fp in variants.items() if len(by_fp) == 1}
    names: dict[tuple[str, str], str] = {}
    for name in sorted(variants):
        by_fp = variants[name]
        for users in sorted(by_fp.values(), key=min):
            new = name
            if len(by_fp) > 1:
                new = f"{name}__{slug(min(users)) or 'common'}"
                n = 2
                while new in taken:
                    new = f"{name}__{slug(min(users))}_{n}"
                    n += 1
                taken.add(new)
            for source in users:
                names[(source, name)] = new
    return names


def _referenced(document: dict[str, Any]) -> set[str]:
    """Schema names reachable from the paths."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                    yield value[len(SCHEMA_REF) :]
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    todo = list(refs(document["paths"]))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(refs(schemas.get(name, {})))
    return seen


# --- responses and security -----------------------------------------------------------------------------------


def _problem(
    description: str, schema: str = "Problem", headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF + schema}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _decorate(op: _Operation) -> dict[str, Any]:
    """A copy of the operation with the shared error responses, security and extensions added."""
    spec = copy.deepcopy(op.spec)
    responses: dict[str, Any] = spec.setdefault("responses", {})
    takes_input = bool(spec.get("parameters")) or "requestBody" in spec
    if takes_input or "422" in responses:
        responses["422"] = _problem(
            "Validation failed: `errors` lists the offending fields.", "ValidationProblem"
        )
    if "requestBody" in spec:
        responses.setdefault("413", _problem("The body is over the size limit."))
    if op.schemes:
        # Several required schemes are all needed at once: one requirement object holding them all.
        spec["security"] = [{scheme: [] for scheme in op.schemes}]
        responses.setdefault("401", _problem("Missing or invalid credentials (`error`: `Invalid token`)."))
    elif op.optional:
        spec["security"] = [{}, *({scheme: []} for scheme in op.optional)]
    if op.forbidden:
        responses.setdefault("403", _problem(" ".join(op.forbidden)))
    if op.rate_limit:
        spec["x-rate-limit"] = op.rate_limit
        responses.setdefault("429", _problem("Too many requests.", headers=RATE_LIMIT_HEADERS))
    responses.setdefault("4XX", _problem("Another client error: a business outcome with a stable `code`."))
    responses.setdefault("500", _problem("An unexpected error (reported; `code: INTERNAL_ERROR`)."))
    if not spec.get("tags"):
        segments = op.path.removeprefix("/api/").split("/")
        spec["tags"] = [segments[0] or "root"]
    spec["x-vercel-function"] = op.file
    spec["responses"] = dict(sorted(responses.items(), key=lambda kv: _status_order(kv[0])))
    return spec


def _status_order(code: str) -> tuple[int, str]:
    # "4XX" sorts after every listed 4xx; "default" last.
    if not code[:1].isdigit():
        return (999, code)
    return (int(code[0]) * 100 + (int(code[1:]) if code[1:].isdigit() else 99), code)


def _renamer(names: dict[tuple[str, str], str], source: str) -> Callable[[str], str]:
    return lambda ref: names.get((source, ref), ref)


# --- the document ---------------------------------------------------------------------------------------------


def build_document(functions: list[_Function], *, version: str = "0.1.0") -> dict[str, Any]:
    """Merge loaded functions into one document (see the module docstring for the rules)."""
    functions = sorted(functions, key=lambda f: f.file)  # ids and names never depend on the caller's order
    sources = [(_COMMON_SOURCE, COMMON_SCHEMAS)] + [(f.file, f.schemas) for f in functions]
    names = _schema_names(sources)
    schemas: dict[str, Any] = {}
    for source, own in sources:
        for name, schema in own.items():
            new = names[(source, name)]
            schemas.setdefault(new, _walk_refs(schema, _renamer(names, source)))
    paths: dict[str, dict[str, Any]] = {}
    owners: dict[tuple[str, str], str] = {}
    operation_ids: set[str] = set()
    duplicates = []
    for function in functions:
        for op in function.operations:
            key = (op.path, op.method)
            if key in owners:
                duplicates.append(f"{op.method.upper()} {op.path}: {owners[key]} and {op.file}")
                continue
            owners[key] = op.file
            spec = _walk_refs(_decorate(op), _renamer(names, function.file))
            op_id = spec.get("operationId") or f"{op.method}_{slug(op.path)}"
            if op_id in operation_ids:
                # FastAPI names a multi-method route after its first method: name this one after its own.
                op_id = re.sub(rf"_(?:{'|'.join(METHODS)})$", f"_{op.method}", op_id)
            base, n = op_id, 2
            while op_id in operation_ids:
                op_id, n = f"{base}_{n}", n + 1
            operation_ids.add(op_id)
            spec["operationId"] = op_id
            paths.setdefault(op.path, {})[op.method] = spec
    if duplicates:
        raise OpenApiBuildError("two functions document the same operation:\n  " + "\n  ".join(duplicates))
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Digis API", "version": version, "description": DESCRIPTION},
        "paths": {p: {m: paths[p][m] for m in METHODS if m in paths[p]} for p in sorted(paths)},
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }
    keep = _referenced(document)
    document["components"]["schemas"] = {n: schemas[n] for n in sorted(schemas) if n in keep}
    used = {
        s
        for item in paths.values()
        for spec in item.values()
        for req in spec.get("security", [])
        for s in req
    }
    document["components"]["securitySchemes"] = {k: v for k, v in SECURITY_SCHEMES.items() if k in used}
    tags = sorted({t for item in paths.values() for spec in item.values() for t in spec.get("tags", [])})
    document["tags"] = [{"name": t} for t in tags]
    return copy.deepcopy(document)


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[tuple[str, int], ...], dict[str, Any]]] = {}


def _stamp(root: Path) -> tuple[tuple[str, int], ...]:
    return tuple((p.as_posix(), (root / p).stat().st_mtime_ns) for p in function_files(root))


def openapi_document(root: Path = ROOT) -> dict[str, Any]:
    """The merged document for `root/api` (rebuilt when a function file changes; a fresh copy each call)."""
    from lib.config import get_settings

    root = root.resolve()
    with _cache_lock:
        stamp = _stamp(root)
        cached = _cache.get(root)
        if cached is None or cached[0] != stamp:
            # A changed file must be re-imported: forget our copies of every function under this root.
            for name in [n for n in sys.modules if n.startswith("_openapi_vercel_fn_")]:
                del sys.modules[name]
            document = build_document(load_functions(root), version=get_settings().app_version)
            _cache[root] = cached = (stamp, document)
        return copy.deepcopy(cached[1])


# --- HTML -----------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#14213d;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}nav a{margin-right:10px}
section.op{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:10px 0;padding:10px 14px}
.m{display:inline-block;min-width:58px;text-align:center;font-weight:700;border-radius:4px;color:#fff;
padding:2px 6px;margin-right:8px;text-transform:uppercase;font-size:12px}
.get{background:#2f80ed}.post{background:#27ae60}.put{background:#f2994a}.patch{background:#9b51e0}
.delete{background:#eb5757}.path{font-family:ui-monospace,monospace;font-weight:600}
.lock{font-size:12px;background:#fff3cd;border:1px solid #e6c200;border-radius:4px;padding:1px 6px;margin-left:8px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde1e7;padding:3px 8px;text-align:left;
vertical-align:top}pre{background:#f0f2f5;padding:8px;overflow:auto;border-radius:4px;margin:4px 0}
h2{margin-top:28px}h3{margin:6px 0 2px;font-size:14px}.muted{color:#667}
"""


def _json_html(value: Any) -> str:
    """Pretty JSON, escaped, with schema refs linked to their anchors."""
    text = html.escape(json.dumps(value, indent=2))
    pattern = re.escape(html.escape(json.dumps(SCHEMA_REF))[:-6]) + r"([A-Za-z0-9._-]+)&quot;"
    return re.sub(
        pattern, lambda m: f'&quot;<a href="#schema-{m.group(1)}">{SCHEMA_REF}{m.group(1)}</a>&quot;', text
    )


def _schema_label(schema: dict[str, Any] | None) -> str:
    if not schema:
        return "any"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
        name = html.escape(ref[len(SCHEMA_REF) :])
        return f'<a href="#schema-{name}">{name}</a>'
    return f"<code>{html.escape(json.dumps(schema, separators=(',', ':')))}</code>"


def _operation_html(path: str, method: str, spec: dict[str, Any]) -> list[str]:
    anchor = html.escape(f"op-{spec.get('operationId', method + path)}")
    out = [f'<section class="op" id="{anchor}">']
    lock = "".join(f'<span class="lock">{html.escape(s)}</span>' for r in spec.get("security", []) for s in r)
    out.append(
        f'<div><span class="m {method}">{method}</span><span class="path">{html.escape(path)}</span>{lock}</div>'
    )
    for key in ("summary", "description"):
        if spec.get(key):
            out.append(f"<p>{html.escape(str(spec[key]))}</p>")
    if spec.get("x-rate-limit"):
        out.append(f'<p class="muted">rate limit bucket: {html.escape(spec["x-rate-limit"])}</p>')
    params = spec.get("parameters", [])
    if params:
        out.append(
            "<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th></tr>"
        )
        for p in params:
            out.append(
                f"<tr><td>{html.escape(p.get('name', ''))}</td><td>{html.escape(p.get('in', ''))}</td>"
                f"<td>{'yes' if p.get('required') else 'no'}</td><td>{_schema_label(p.get('schema'))}</td></tr>"
            )
        out.append("</table>")
    body = spec.get("requestBody")
    if body:
        out.append("<h3>Request body</h3><table>")
        for media, content in body.get("content", {}).items():
            out.append(
                f"<tr><td>{html.escape(media)}</td><td>{_schema_label(content.get('schema'))}</td></tr>"
            )
        out.append("</table>")
    out.append("<h3>Responses</h3><table><tr><th>status</th><th>description</th><th>body</th></tr>")
    for status, response in spec.get("responses", {}).items():
        bodies = "<br>".join(
            f"{html.escape(media)}: {_schema_label(content.get('schema'))}"
            for media, content in response.get("content", {}).items()
        )
        out.append(
            f"<tr><td>{html.escape(status)}</td><td>{html.escape(response.get('description', ''))}</td>"
            f"<td>{bodies}</td></tr>"
        )
    out.append(
        f'</table><p class="muted">function: {html.escape(spec.get("x-vercel-function", ""))}</p></section>'
    )
    return out


def render_html(document: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets) listing every operation and schema."""
    info = document.get("info", {})
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document.get("paths", {}).items():
        for method, spec in item.items():
            by_tag.setdefault((spec.get("tags") or ["other"])[0], []).append((path, method, spec))
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(info.get('title', 'API'))} {html.escape(info.get('version', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(info.get('title', 'API'))} "
        f"<small>{html.escape(info.get('version', ''))}</small></h1></header><main>",
        f"<pre>{html.escape(info.get('description', ''))}</pre>",
        "<nav>"
        + "".join(f'<a href="#tag-{html.escape(t)}">{html.escape(t)}</a>' for t in sorted(by_tag))
        + "</nav>",
    ]
    for tag in sorted(by_tag):
        out.append(f'<h2 id="tag-{html.escape(tag)}">{html.escape(tag)}</h2>')
        for path, method, spec in by_tag[tag]:
            out.extend(_operation_html(path, method, spec))
    components = document.get("components", {})
    out.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in components.get("schemas", {}).items():
        out.append(
            f'<h3 id="schema-{html.escape(name)}">{html.escape(name)}</h3><pre>{_json_html(schema)}</pre>'
        )
    out.append('<h2 id="security">Security schemes</h2>')
    for name, scheme in components.get("securitySchemes", {}).items():
        out.append(f"<h3>{html.escape(name)}</h3><pre>{_json_html(scheme)}</pre>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def docs_html(root: Path = ROOT) -> str:
    """The HTML page for the current `root/api` (see `render_html`)."""
    return render_html(openapi_document(root))


# --- CLI ------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Write the merged document to stdout (or --out) and, with --html, the docs page."""
    parser = argparse.ArgumentParser(prog="scripts/openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write openapi.json here instead of stdout")
    parser.add_argument("--html", type=Path, help="also write the HTML docs page here")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root holding api/")
    args = parser.parse_args(argv)
    # Building the document reads settings but needs no real secrets: development defaults unless told otherwise.
    os.environ.setdefault("ENVIRONMENT", "development")
    try:
        document = openapi_document(args.root)
    except OpenApiBuildError as exc:
        print(f"openapi: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if args.html:
        args.html.write_text(render_html(document))
    ops = sum(len(item) for item in document["paths"].values())
    print(f"openapi: {ops} operations, {len(document['components']['schemas'])} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One OpenAPI 3.1 document for every `api/**.py` function, derived from the same route table as the router.

Each function is a FastAPI app built with `openapi_url=None` (nothing is served), but `app.openapi()` still builds
its schema. Every function is loaded by file path (as Vercel does), their paths and component schemas merged, and
what they share through `lib.http.create_app` and `lib.auth` added:

- problem+json error responses (`Problem`, `ValidationProblem`) on every operation;
- security schemes, marked per operation from its FastAPI dependency tree (SECURITY_RULES): the Supabase bearer
  token exactly when `lib.auth.current_user` or `lib.auth.claims_for` is among its dependencies (`CurrentUser`,
  `CreatorUser`, `AdminUser`, `Claims`); `lib.auth.peek_user_id` makes the token optional; `lib.jobs.verify_cron`
  means the CRON_SECRET bearer and `lib.jobs.verify_qstash_job` the Upstash-Signature header. The rate limiter's
  own token peek does not count (it never refuses anyone);
- 429 with the rate-limit headers where `create_app(rate_limit=...)` installed a limiter.

Component schemas with the same name and content are shared; same name, different content: every variant is
renamed `<Name>__<function slug>` (the slug of the first function file, in sorted order, that defines it), so the
names do not depend on which other functions exist. Unreferenced schemas are dropped. The local server serves the
document at /api/openapi.json and a page at /api/docs (localdev/openapi.py, which is also scripts/openapi).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.routing.openapi_common import (
    COMMON_SCHEMAS,
    DESCRIPTION,
    FORBIDDEN_RULES,
    METHODS,
    OPTIONAL_RULES,
    PROBLEM_JSON,
    RATE_LIMIT_DEPENDENCY,
    RATE_LIMIT_HEADERS,
    SCHEMA_REF,
    SECURITY_RULES,
    SECURITY_SCHEMES,
)
from lib.routing.table import ROOT, function_files, load_function, module_name_for


class OpenApiBuildError(RuntimeError):
    """Some function could not be loaded or does not describe itself."""


@dataclass
class Operation:
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
class Function:
    """One function's own document and operations."""

    file: str
    doc: dict[str, Any]
    operations: list[Operation]

    @property
    def schemas(self) -> dict[str, Any]:
        """Its components/schemas."""
        return dict(self.doc.get("components", {}).get("schemas", {}))


def canonical_path(path: str) -> str:
    """`/api/v1/x` -> `/api/x` (the document lists each route once)."""
    return "/api" + path[len("/api/v1") :] if path == "/api/v1" or path.startswith("/api/v1/") else path


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    """Every callable in a FastAPI dependant tree (the route's own endpoint excluded)."""
    stack = list(getattr(dependant, "dependencies", []))
    while stack:
        dep = stack.pop()
        if dep.call is not None:
            yield dep.call
        stack.extend(dep.dependencies)


def describe(app: Any, file: str) -> Function:
    """One loaded function's document and operations, with what its dependency tree says about security."""
    from fastapi.routing import APIRoute

    if not callable(getattr(app, "openapi", None)):
        raise OpenApiBuildError(f"{file}: `app` is not a FastAPI app (no .openapi())")
    with warnings.catch_warnings():
        # One route with several methods shares FastAPI's operation id; build_document makes ids unique.
        warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
        doc = copy.deepcopy(app.openapi())
    routes = {
        (r.path_format, m.lower()): r
        for r in app.routes
        if isinstance(r, APIRoute) and r.include_in_schema
        for m in r.methods or ()
    }
    operations = []
    for path, item in doc.get("paths", {}).items():
        for method in (m for m in METHODS if m in item):
            op = Operation(file=file, path=canonical_path(path), method=method, spec=item[method])
            route = routes.get((path, method))
            for call in _dependency_calls(route.dependant) if route is not None else ():
                name = f"{getattr(call, '__module__', '')}.{getattr(call, '__qualname__', '')}"
                if name in SECURITY_RULES and SECURITY_RULES[name] not in op.schemes:
                    op.schemes.append(SECURITY_RULES[name])
                if name in OPTIONAL_RULES and OPTIONAL_RULES[name] not in op.optional:
                    op.optional.append(OPTIONAL_RULES[name])
                if name in FORBIDDEN_RULES:
                    op.forbidden.append(FORBIDDEN_RULES[name])
                if name == RATE_LIMIT_DEPENDENCY:
                    # create_app's limiter is a closure over the bucket name.
                    op.rate_limit = str(inspect.getclosurevars(call).nonlocals.get("bucket") or "default")
            operations.append(op)
    return Function(file=file, doc=doc, operations=operations)


def load_functions(root: Path = ROOT) -> list[Function]:
    """Every function under `root/api`, loaded by path under a module name of its own (sorted by file)."""
    loaded, errors = [], []
    for rel in function_files(root):
        name = "_openapi" + module_name_for(rel, root)
        try:
            module = sys.modules.get(name) or load_function(rel, root=root, module_name=name)
            loaded.append(describe(module.app, rel.as_posix()))
        except Exception as exc:
            errors.append(f"{rel.as_posix()}: {type(exc).__name__}: {exc}")
    if errors:
        raise OpenApiBuildError("could not describe every function:\n  " + "\n  ".join(errors))
    return loaded


# --- component names ------------------------------------------------------------------------------------------


def _walk_refs(node: Any, rename: Callable[[str], str]) -> Any:
    """A copy of `node` with every `#/components/schemas/X` ref renamed."""
    if isinstance(node, dict):
        return {
            k: SCHEMA_REF + rename(v[len(SCHEMA_REF) :])
            if k == "$ref" and isinstance(v, str) and v.startswith(SCHEMA_REF)
            else _walk_refs(v, rename)
            for k, v in node.items()
        }
    return [_walk_refs(v, rename) for v in node] if isinstance(node, list) else node


def _refs(node: Any) -> set[str]:
    """The schema names `node` refers to."""
    found: set[str] = set()
    _walk_refs(node, lambda name: found.add(name) or name)  # type: ignore[func-returns-value]
    return found


def _fingerprints(schemas: dict[str, Any]) -> dict[str, str]:
    """A content hash per schema that includes what its refs point to (so equal text with different targets differ)."""
    done: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> str:
        if name in done:
            return done[name]
        if name in path or name not in schemas:
            return f"ref:{name}"  # a cycle (or a dangling ref) is identified by name alone
        text = json.dumps(_walk_refs(schemas[name], lambda ref: visit(ref, (*path, name))), sort_keys=True)
        done[name] = hashlib.sha256(text.encode()).hexdigest()
        return done[name]

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
        for users in sorted(variants[name].values(), key=min):
            new = name
            if len(variants[name]) > 1:
                new, n = f"{name}__{slug(min(users)) or 'common'}", 2
                while new in taken:
                    new, n = f"{name}__{slug(min(users))}_{n}", n + 1
                taken.add(new)
            names.update({(source, name): new for source in users})
    return names


# --- responses and security -----------------------------------------------------------------------------------


def _problem(
    description: str, schema: str = "Problem", headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    content = {PROBLEM_JSON: {"schema": {"$ref": SCHEMA_REF + schema}}}
    return {"description": description, "content": content, **({"headers": headers} if headers else {})}


def _status_order(code: str) -> tuple[int, str]:
    # "4XX" sorts after every listed 4xx; "default" last.
    if not code[:1].isdigit():
        return (999, code)
    return (int(code[0]) * 100 + (int(code[1:]) if code[1:].isdigit() else 99), code)


def _decorate(op: Operation) -> dict[str, Any]:
    """A copy of the operation with the shared error responses, security and extensions added."""
    spec = copy.deepcopy(op.spec)
    responses: dict[str, Any] = spec.setdefault("responses", {})
    if spec.get("parameters") or "requestBody" in spec or "422" in responses:
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
    spec["tags"] = spec.get("tags") or [op.path.removeprefix("/api/").split("/")[0] or "root"]
    spec["x-vercel-function"] = op.file
    spec["responses"] = dict(sorted(responses.items(), key=lambda kv: _status_order(kv[0])))
    return spec


# --- the document ---------------------------------------------------------------------------------------------


def build_document(functions: list[Function], *, version: str = "0.1.0") -> dict[str, Any]:
    """Merge loaded functions into one document (see the module docstring for the rules)."""
    functions = sorted(functions, key=lambda f: f.file)  # ids and names never depend on the caller's order
    # The shared schemas' source "" sorts before every function file.
    sources = [("", COMMON_SCHEMAS), *((f.file, f.schemas) for f in functions)]
    names = _schema_names(sources)

    def renamer(source: str) -> Callable[[str], str]:
        return lambda ref: names.get((source, ref), ref)

    schemas: dict[str, Any] = {}
    for source, own in sources:
        for name, schema in own.items():
            schemas.setdefault(names[(source, name)], _walk_refs(schema, renamer(source)))
    paths: dict[str, dict[str, Any]] = {}
    owners: dict[tuple[str, str], str] = {}
    operation_ids: set[str] = set()
    duplicates = []
    for function in functions:
        for op in function.operations:
            if (op.path, op.method) in owners:
                duplicates.append(
                    f"{op.method.upper()} {op.path}: {owners[(op.path, op.method)]} and {op.file}"
                )
                continue
            owners[(op.path, op.method)] = op.file
            spec = _walk_refs(_decorate(op), renamer(function.file))
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
    keep, todo = set(), list(_refs(paths))  # the schemas reachable from the paths
    while todo:
        if (name := todo.pop()) not in keep:
            keep.add(name)
            todo.extend(_refs(schemas.get(name, {})))
    specs = [spec for item in paths.values() for spec in item.values()]
    used = {s for spec in specs for req in spec.get("security", []) for s in req}
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {"title": "Digis API", "version": version, "description": DESCRIPTION},
            "paths": {p: {m: paths[p][m] for m in METHODS if m in paths[p]} for p in sorted(paths)},
            "components": {
                "schemas": {n: schemas[n] for n in sorted(schemas) if n in keep},
                "securitySchemes": {k: v for k, v in SECURITY_SCHEMES.items() if k in used},
            },
            "tags": [{"name": t} for t in sorted({t for spec in specs for t in spec.get("tags", [])})],
        }
    )


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[tuple[str, int], ...], dict[str, Any]]] = {}


def openapi_document(root: Path = ROOT) -> dict[str, Any]:
    """The merged document for `root/api` (rebuilt when a function file changes; a fresh copy each call)."""
    from lib.config import get_settings

    root = root.resolve()
    with _cache_lock:
        stamp = tuple((p.as_posix(), (root / p).stat().st_mtime_ns) for p in function_files(root))
        cached = _cache.get(root)
        if cached is None or cached[0] != stamp:
            # A changed file must be re-imported: forget our copies of every function under this root.
            for name in [n for n in sys.modules if n.startswith("_openapi_vercel_fn_")]:
                del sys.modules[name]
            document = build_document(load_functions(root), version=get_settings().app_version)
            _cache[root] = cached = (stamp, document)
        return copy.deepcopy(cached[1])

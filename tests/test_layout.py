"""The api/ layout Vercel relies on: one ASGI `app` per file serving exactly its own URL, and lean cold starts.

Covers every file under api/ automatically. Handlers are not run here: each route's endpoint is swapped for a
probe, so these tests check routing (the file's own path under /api, /api/v1 and Vercel's `[param]` destination
form) through the function's real middleware without touching a database or a hosted service.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import selectors
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Route as StarletteRoute

from lib import routing
from lib.routing import Route
from localdev.vercel_router import CronSchedule

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "0b7e6a3e-58c4-4c1e-9a51-7f6d1c2b9e10"  # a UUID fits every [param] (ids, usernames, channels)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PROBE_HEADER = "x-layout-probe"

# Heavy SDKs and the functions allowed to import them (fnmatch over the file path; `*` also crosses `/`).
# A function outside its SDK's list must not load it at import time: each function pays its own cold start.
# Extend this table when a new function truly needs an SDK.
HEAVY_SDKS: dict[str, tuple[str, ...]] = {
    "stripe": ("api/payments/*", "api/tokens/*", "api/creator-payouts/*"),
    "pusher": (
        "api/realtime/*",
        "api/calls/*",
        "api/tips/*",
        "api/streaming/*",
        "api/payments/*",
        "api/tokens/*",
        "api/jobs/*",
        "api/cron/*",
    ),
    "agora_token_builder": ("api/agora/*", "api/calls/*", "api/streaming/*"),
    "qstash": ("api/calls/*", "api/jobs/*", "api/cron/*"),
    "mangum": (),  # only lambda_handler.py, never a Vercel function
}

# Files that would make Vercel (or a future preset) treat the project as one app instead of one function per file.
SINGLE_APP_ENTRYPOINTS = ("main.py", "app.py", "index.py", "server.py", "asgi.py", "wsgi.py")


def _routes() -> tuple[list[Route], str | None]:
    try:
        return routing.routes(ROOT), None
    except routing.RouteConfigError as exc:
        return [], str(exc)


ROUTES, ROUTE_ERROR = _routes()
DYNAMIC = [r for r in ROUTES if r.dynamic]
CONFIG = routing.read_vercel_json(ROOT)


def _id(route: Route) -> str:
    return route.file.as_posix()


def _own_url(route: Route) -> str:
    return route.url(**dict.fromkeys(route.params, SAMPLE))


def _normalized(path: str) -> str:
    """A route path with its parameter names dropped and /api/v1 folded onto /api."""
    path = re.sub(r"\{[^}]+\}", "{}", path)
    return "/api" + path[len("/api/v1") :] if path.startswith("/api/v1/") else path


def _aliases(route: Route) -> list[str]:
    """The vercel.json rewrite sources whose destination is this function."""
    return [
        r["source"] for r in CONFIG.get("rewrites", []) if r["destination"].split("?")[0] == route.destination
    ]


# --- loading functions with probes ----------------------------------------------------------------------------


def _probe(path: str) -> Callable[..., Any]:
    async def probe(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(PROBE_HEADER.encode(), b"1")]})
        await send({"type": "http.response.body", "body": json.dumps({"route": path}).encode()})

    return probe


@cache
def _module(route: Route) -> Any:
    name = "_layout_" + routing.module_name_for(route.file, ROOT)
    return routing.load_function(route.file, root=ROOT, module_name=name)


@cache
def _probed_app(route: Route) -> Any:
    """The function's own app (its middleware intact) with every endpoint replaced by a probe."""
    app = _module(route).app
    for r in getattr(app, "routes", []):
        if isinstance(r, StarletteRoute):
            r.app = _probe(r.path)
    return app


def _reaches_endpoint(client: TestClient, url: str) -> list[str]:
    """The methods for which `url` reaches one of the function's endpoints."""
    return [m for m in METHODS if client.request(m, url).headers.get(PROBE_HEADER) == "1"]


@pytest.fixture(scope="module")
def router_client() -> Any:
    router = routing.Router(ROOT, loader=_probed_app)
    with TestClient(router, raise_server_exceptions=False) as client:
        yield client


# --- the tree and vercel.json ---------------------------------------------------------------------------------


def test_api_tree_is_one_vercel_build_accepts() -> None:
    assert ROUTE_ERROR is None, ROUTE_ERROR


def test_no_single_app_entrypoint_at_the_root() -> None:
    present = [name for name in SINGLE_APP_ENTRYPOINTS if (ROOT / name).exists()]
    assert not present, f"{present} would turn the project into one app; functions live in api/"


def test_vercel_json_disables_the_framework_preset_and_configures_functions() -> None:
    # requirements.txt names fastapi: without `"framework": null` Vercel builds one FastAPI app, not api/.
    assert "framework" in CONFIG and CONFIG["framework"] is None
    settings = CONFIG["functions"]["api/**/*.py"]
    assert 10 <= settings["maxDuration"] <= 60
    assert settings["memory"] >= 512
    assert "tests/**" in settings["excludeFiles"] and "localdev/**" in settings["excludeFiles"]
    assert CONFIG["rewrites"][0] == {"source": "/api/v1/:path*", "destination": "/api/:path*"}


RUNTIME_ROOT_ENTRIES = {"api", "lib", "public", "requirements.txt", "vercel.json", ".python-version"}


def _vercelignored(name: str, rules: list[str]) -> bool:
    """Whether a root entry is left out by .vercelignore (gitignore rules; the last match wins)."""
    ignored = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!").strip("/")
        if fnmatch.fnmatch(name, pattern):
            ignored = not negated
    return ignored


def test_vercelignore_uploads_only_what_functions_need() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".vercelignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    entries = {p.name for p in ROOT.iterdir()} | {
        "tests",
        "localdev",
        "scripts",
        "docs",
        ".venv",
        ".env",
        "README.md",
    }
    kept = {name for name in entries if not _vercelignored(name, rules)}
    assert RUNTIME_ROOT_ENTRIES & entries <= kept, f"{RUNTIME_ROOT_ENTRIES - kept} must reach the deployment"
    assert kept <= RUNTIME_ROOT_ENTRIES, (
        f"{sorted(kept - RUNTIME_ROOT_ENTRIES)} would be uploaded (and served)"
    )


@pytest.mark.parametrize("cron", CONFIG.get("crons", []), ids=lambda c: c["path"])
def test_every_cron_reaches_a_function(cron: dict[str, str]) -> None:
    CronSchedule.parse(cron["schedule"])
    # Vercel would get a 404 every run: a cron pointing at no function is a failure, not a skip.
    assert routing.Router(ROOT).resolve(cron["path"]) is not None, f"{cron['path']}: no function serves it"


@pytest.mark.parametrize(
    "rewrite",
    [r for r in CONFIG.get("rewrites", []) if ":" not in r["source"]],
    ids=lambda r: r["source"],
)
def test_alias_rewrite_reaches_its_function(router_client: TestClient, rewrite: dict[str, str]) -> None:
    destination = routing.Router(ROOT).resolve(rewrite["destination"])
    assert destination is not None, f"{rewrite['source']} -> {rewrite['destination']}: no function serves it"
    # On Vercel the function sees the alias path, so it must answer it too (not only its own path).
    sources = [rewrite["source"]]
    if rewrite["source"].startswith("/api/"):
        sources.append("/api/v1/" + rewrite["source"].removeprefix("/api/"))
    for source in sources:
        assert _reaches_endpoint(router_client, source), (
            f"{source} -> {destination.route.file} answers 404/405"
        )


# --- each function --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_function_exports_an_asgi_app_and_no_handler(route: Route) -> None:
    module = _module(route)
    # Vercel's Python runtime prefers a top-level `handler` (a BaseHTTPRequestHandler class) over `app`.
    assert not hasattr(module, "handler"), f"{route.file} defines `handler`; export only `app`"
    app = getattr(module, "app", None)
    assert isinstance(app, Starlette), (
        f"{route.file} must export `app = create_app()`, got {type(app).__name__}"
    )


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_function_declares_only_its_own_path(route: Route) -> None:
    own = {_normalized(route.pattern)} | {_normalized(a) for a in _aliases(route)}
    declared = {r.path for r in _module(route).app.routes if isinstance(r, StarletteRoute)}
    declared -= {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    assert declared, f"{route.file} declares no route"
    strays = sorted(p for p in declared if _normalized(p) not in own)
    assert not strays, f"{route.file} serves {route.pattern} only, but declares {strays}"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_function_answers_its_own_path_under_api_and_v1(router_client: TestClient, route: Route) -> None:
    url = _own_url(route)
    for path in (url, "/api/v1" + url.removeprefix("/api")):
        assert _reaches_endpoint(router_client, path), f"{path} -> {route.file}: 404/405 for every method"


@pytest.mark.parametrize("route", DYNAMIC, ids=_id)
def test_dynamic_function_answers_vercels_destination_form(route: Route) -> None:
    query = "&".join(f"{p}={SAMPLE}" for p in route.params)
    encoded = route.destination.replace("[", "%5B").replace("]", "%5D")
    with TestClient(_probed_app(route), raise_server_exceptions=False) as client:
        for path in (route.destination, encoded, "/api/v1" + route.destination.removeprefix("/api")):
            assert _reaches_endpoint(client, f"{path}?{query}"), f"{path}?{query} -> 404/405"


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_function_refuses_paths_that_are_not_its_own(route: Route) -> None:
    url = _own_url(route)
    strangers = [url + "/not-mine", url.rsplit("/", 1)[0] + "/zz-not-a-function"]
    if route.params and route.pattern.endswith("}"):
        strangers.pop()  # a trailing [param] matches any last segment by design
    with TestClient(_probed_app(route), raise_server_exceptions=False) as client:
        for path in strangers:
            for method in ("GET", "POST"):
                r = client.request(method, path)
                assert r.status_code == 404, f"{route.file} answers {method} {path} with {r.status_code}"


# --- cold-start weight ----------------------------------------------------------------------------------------

# A measuring process: preloads the packages every function uses (none of them a heavy SDK), then imports each
# requested file in a forked child, so every file is measured in a clean interpreter without paying for Python
# and FastAPI again each time.
_MEASURER = """
import importlib.util, json, os, sys, traceback
root, heavy = sys.argv[1], sys.argv[2].split(",")
sys.path.insert(0, root)
for name in ("fastapi", "starlette", "pydantic", "pydantic_settings", "httpx", "psycopg", "psycopg_pool"):
    try:
        __import__(name)
    except ImportError:
        pass
print(json.dumps({"preloaded_heavy": sorted(n for n in heavy if n in sys.modules)}), flush=True)
for line in sys.stdin:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            spec = importlib.util.spec_from_file_location("_layout_cold_start", os.path.join(root, line.strip()))
            module = importlib.util.module_from_spec(spec)
            sys.modules["_layout_cold_start"] = module
            spec.loader.exec_module(module)
            out = {"loaded": sorted(n for n in heavy if n in sys.modules)}
        except BaseException:
            out = {"error": traceback.format_exc()[-3000:]}
        os.write(write_end, json.dumps(out).encode())
        os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    print(data.decode() or json.dumps({"error": "the import child died"}), flush=True)
"""


class _Measurer:
    """Talks to the measuring process: one file in, the heavy SDKs its import loaded out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.selector = selectors.DefaultSelector()
        assert proc.stdout is not None
        self.selector.register(proc.stdout, selectors.EVENT_READ)

    def reply(self, timeout_s: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        if not self.selector.select(timeout_s):
            raise TimeoutError(f"no answer from the import measurer in {timeout_s}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the import measurer exited with {self.proc.wait(timeout=5)}")
        return dict(json.loads(line))

    def measure(self, route: Route) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(route.file.as_posix() + "\n")
        self.proc.stdin.flush()
        return self.reply()


@pytest.fixture(scope="module")
def measurer() -> Iterator[_Measurer]:
    if not hasattr(os, "fork"):
        pytest.skip("measuring imports needs os.fork")
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEASURER, str(ROOT), ",".join(HEAVY_SDKS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ENVIRONMENT": os.environ.get("ENVIRONMENT", "test")},
    )
    m = _Measurer(proc)
    try:
        # A preloaded heavy SDK would be blamed on every file: the measurement would be meaningless.
        assert m.reply()["preloaded_heavy"] == []
        yield m
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
        m.selector.close()


@pytest.mark.parametrize("route", ROUTES, ids=_id)
def test_function_imports_only_the_heavy_sdks_it_needs(measurer: _Measurer, route: Route) -> None:
    result = measurer.measure(route)
    assert "error" not in result, f"{route.file} failed to import in a clean interpreter:\n{result['error']}"
    file = route.file.as_posix()
    unneeded = [sdk for sdk in result["loaded"] if not any(fnmatch.fnmatch(file, p) for p in HEAVY_SDKS[sdk])]
    assert not unneeded, (
        f"{file} loads {unneeded} at import; import the SDK inside the lib function that uses it "
        f"(or add the file to HEAVY_SDKS in tests/test_layout.py if it truly needs it)"
    )

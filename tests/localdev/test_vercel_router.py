"""localdev.vercel_router routes a temp api/ tree the way `vercel build`'s routing table does, and fires crons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from localdev import vercel_router
from localdev.vercel_router import CronSchedule, Rewrite, RouteConfigError, build_app, routes

ROOT = Path(__file__).resolve().parents[2]

# Every temp function echoes what Vercel handed it, so a test can see the path, query and headers it got.
ECHO = """
import json
from urllib.parse import parse_qsl

NAME = {name!r}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({{"type": "lifespan.startup.complete"}})
        await send({{"type": "lifespan.shutdown.complete"}})
        return
    headers = {{k.decode(): v.decode() for k, v in scope["headers"]}}
    body = {{
        "fn": NAME,
        "path": scope["path"],
        "query": dict(parse_qsl(scope["query_string"].decode())),
        "headers": headers,
    }}
    raw = json.dumps(body).encode()
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": raw}})
"""

# Answers 200 only with the right bearer, and logs each hit so a test can see the cron arrived.
CRON = """
import json
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    with open(os.environ["ROUTER_TEST_CRON_LOG"], "a") as log:
        log.write(json.dumps({"path": scope["path"], "auth": headers.get("authorization"),
                              "agent": headers.get("user-agent")}) + "\\n")
    ok = headers.get("authorization") == "Bearer s3cret-cron"
    await send({"type": "http.response.start", "status": 200 if ok else 401, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""

VERCEL_JSON = {
    "framework": None,
    "rewrites": [
        {"source": "/api/v1/:path*", "destination": "/api/:path*"},
        {"source": "/api/healthz", "destination": "/api/health"},
        {"source": "/public/streams/live", "destination": "/api/streaming/public/streams/live"},
    ],
    "crons": [{"path": "/api/cron/sweep", "schedule": "* * * * *"}],
}

FILES = [
    "api/health.py",
    "api/calls/pending.py",
    "api/calls/[call_id].py",
    "api/calls/[call_id]/accept.py",
    "api/creator-payouts/request-payout.py",
    "api/x/[a]/b.py",
    "api/x/c/[d].py",
    "api/x/[a]/[b].py",
    "api/streaming/public/streams/live.py",
]


def write_tree(root: Path, files: list[str], config: dict[str, object] | None = None) -> Path:
    """A project root with echo functions at `files` and a vercel.json."""
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ECHO.format(name=rel))
    (root / "vercel.json").write_text(json.dumps(VERCEL_JSON if config is None else config))
    return root


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading a function puts its project root on sys.path, as Vercel does; temp roots must not outlive a test.
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path, FILES)


@pytest.fixture
def client(tree: Path) -> Iterator[TestClient]:
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False)) as c:
        yield c


def test_static_file_serves_its_own_path(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["fn"] == "api/health.py"
    assert body["path"] == "/api/health"
    assert (
        client.get("/api/creator-payouts/request-payout").json()["fn"]
        == "api/creator-payouts/request-payout.py"
    )


def test_param_segment_reaches_its_file_with_original_path_and_param_in_query(client: TestClient) -> None:
    body = client.get("/api/calls/c-123/accept?x=1").json()
    assert body["fn"] == "api/calls/[call_id]/accept.py"
    assert body["path"] == "/api/calls/c-123/accept"
    assert body["query"] == {"x": "1", "call_id": "c-123"}


def test_nested_params_all_reach_the_query(client: TestClient) -> None:
    body = client.get("/api/x/one/two").json()
    assert body["fn"] == "api/x/[a]/[b].py"
    assert body["query"] == {"a": "one", "b": "two"}


def test_static_file_wins_over_dynamic_sibling(client: TestClient) -> None:
    assert client.get("/api/calls/pending").json()["fn"] == "api/calls/pending.py"
    assert client.get("/api/calls/abc").json()["fn"] == "api/calls/[call_id].py"
    # Vercel's order: fewer trailing [param]s first, so a static file name beats a static folder name.
    assert client.get("/api/x/c/b").json()["fn"] == "api/x/[a]/b.py"
    assert client.get("/api/x/c/zz").json()["fn"] == "api/x/c/[d].py"


def test_v1_rewrite_reaches_static_and_dynamic_functions_with_original_path(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert (body["fn"], body["path"]) == ("api/health.py", "/api/v1/health")
    body = client.post("/api/v1/calls/c-9/accept").json()
    assert (body["fn"], body["path"], body["query"]) == (
        "api/calls/[call_id]/accept.py",
        "/api/v1/calls/c-9/accept",
        {"call_id": "c-9"},
    )


def test_alias_rewrites_reach_their_destination_with_original_path(client: TestClient) -> None:
    for path, fn in [
        ("/api/healthz", "api/health.py"),
        ("/api/v1/healthz", "api/health.py"),
        ("/public/streams/live", "api/streaming/public/streams/live.py"),
    ]:
        body = client.get(path).json()
        assert (body["fn"], body["path"]) == (fn, path)


def test_vercel_destination_form_is_served_directly(client: TestClient) -> None:
    body = client.get("/api/calls/[call_id]/accept?call_id=c-7").json()
    assert body["fn"] == "api/calls/[call_id]/accept.py"
    assert body["query"]["call_id"] == "c-7"


@pytest.mark.parametrize(
    "path", ["/api/nope", "/nope", "/api/calls/a/accept/extra", "/api/v1", "/api/_shared"]
)
def test_unknown_path_is_404_problem_json(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 404
    assert body["code"] == "NOT_FOUND"
    assert path in body["detail"]


def test_platform_headers_are_set_and_cannot_be_spoofed(client: TestClient) -> None:
    headers = client.get(
        "/api/health", headers={"x-real-ip": "6.6.6.6", "x-forwarded-for": "6.6.6.6"}
    ).json()["headers"]
    assert headers["x-real-ip"] == headers["x-forwarded-for"] == "testclient"
    assert headers["x-vercel-id"].startswith("dev1::")


def test_import_error_is_500_naming_the_file_and_is_retried_after_a_fix(tree: Path) -> None:
    broken = tree / "api" / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False)) as client:
        r = client.get("/api/broken")
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "FUNCTION_IMPORT_ERROR"
        assert "api/broken.py" in body["detail"] and "boom at import" in body["detail"]
        assert client.get("/api/health").status_code == 200  # the server keeps serving the others
        broken.write_text(ECHO.format(name="fixed"))
        assert client.get("/api/broken").json()["fn"] == "fixed"


def test_file_without_app_is_500(tree: Path) -> None:
    (tree / "api" / "noapp.py").write_text("handler = None\n")
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False)) as client:
        r = client.get("/api/noapp")
        assert r.status_code == 500
        assert "exports no ASGI `app`" in r.json()["detail"]


def test_function_crash_is_500_problem_and_next_request_works(tree: Path) -> None:
    (tree / "api" / "crash.py").write_text(
        "calls = []\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    calls.append(1)\n"
        "    if len(calls) == 1:\n"
        "        raise ValueError('first call fails')\n"
        "    await send({'type': 'http.response.start', 'status': 204, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b''})\n"
    )
    with TestClient(
        build_app(tree, cron_secret=None, fire_crons=False), raise_server_exceptions=False
    ) as client:
        r = client.get("/api/crash")
        assert r.status_code == 500
        assert r.json()["code"] == "FUNCTION_INVOCATION_FAILED"
        assert client.get("/api/crash").status_code == 204


def test_function_lifespan_starts_once_and_stops_with_the_router(tree: Path) -> None:
    log = tree / "lifespan.log"
    (tree / "api" / "life.py").write_text(
        "import pathlib\n"
        f"LOG = pathlib.Path({str(log)!r})\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'lifespan':\n"
        "        while True:\n"
        "            message = await receive()\n"
        "            LOG.open('a').write(message['type'] + '\\n')\n"
        "            if message['type'] == 'lifespan.startup':\n"
        "                await send({'type': 'lifespan.startup.complete'})\n"
        "            else:\n"
        "                await send({'type': 'lifespan.shutdown.complete'})\n"
        "                return\n"
        "    await send({'type': 'http.response.start', 'status': 204, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b''})\n"
    )
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False)) as client:
        assert not log.exists()  # imported on first use, not at router start
        assert client.get("/api/life").status_code == 204
        assert client.get("/api/life").status_code == 204
        assert log.read_text().split() == ["lifespan.startup"]
    assert log.read_text().split() == ["lifespan.startup", "lifespan.shutdown"]


def test_underscore_and_dot_files_are_not_functions(tree: Path) -> None:
    for rel in ("api/_shared.py", "api/_private/x.py", "api/calls/_util.py", "api/.hidden.py"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(ECHO.format(name=rel))
    files = {r.file.as_posix() for r in routes(tree)}
    assert files == set(FILES)
    with TestClient(build_app(tree, cron_secret=None, fire_crons=False)) as client:
        assert client.get("/api/_shared").status_code == 404


def test_routes_lists_file_pattern_and_params_for_tools(tree: Path) -> None:
    listed = {r.file.as_posix(): (r.pattern, r.params) for r in routes(tree)}
    assert listed["api/calls/[call_id]/accept.py"] == ("/api/calls/{call_id}/accept", ("call_id",))
    assert listed["api/x/[a]/[b].py"] == ("/api/x/{a}/{b}", ("a", "b"))
    assert listed["api/creator-payouts/request-payout.py"] == ("/api/creator-payouts/request-payout", ())
    order = [r.file.as_posix() for r in routes(tree) if r.dynamic]
    assert order.index("api/x/[a]/b.py") < order.index("api/x/c/[d].py") < order.index("api/x/[a]/[b].py")


@pytest.mark.parametrize(
    "files",
    [
        ["api/calls/[call_id]/accept.py", "api/calls/[id]/status.py"],  # same segment, two names
        ["api/calls/[id]/accept.py", "api/calls/[call_id]/accept.py"],  # the same URL twice
        ["api/x/[id]/y/[id].py"],  # a name repeated in one path
    ],
)
def test_trees_vercel_build_refuses_are_refused(tmp_path: Path, files: list[str]) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(RouteConfigError, match="vercel build would refuse"):
        routes(tmp_path)


def test_rewrite_syntax_follows_path_to_regexp_segments() -> None:
    v1 = Rewrite.parse("/api/v1/:path*", "/api/:path*")
    assert v1.apply("/api/v1/calls/a/accept") == ("/api/calls/a/accept", [])
    assert v1.apply("/api/v1") == ("/api/", [])
    assert v1.apply("/api/v10/x") is None
    # Source params the destination does not use travel as query parameters, like on Vercel.
    assert Rewrite.parse("/resize/:w/:h", "/api/sharp").apply("/resize/8/6") == (
        "/api/sharp",
        [("w", "8"), ("h", "6")],
    )
    with pytest.raises(RouteConfigError):
        Rewrite.parse("/api/(.*)", "/api/$1")
    with pytest.raises(RouteConfigError):
        Rewrite.parse("/api/x", "https://example.com/x")


@pytest.mark.parametrize(
    ("expression", "at", "fires"),
    [
        ("* * * * *", datetime(2026, 1, 5, 3, 17, tzinfo=UTC), True),
        ("*/5 * * * *", datetime(2026, 1, 5, 3, 15, tzinfo=UTC), True),
        ("*/5 * * * *", datetime(2026, 1, 5, 3, 17, tzinfo=UTC), False),
        ("0 3 * * *", datetime(2026, 1, 5, 3, 0, tzinfo=UTC), True),
        ("0 3 * * *", datetime(2026, 1, 5, 4, 0, tzinfo=UTC), False),
        ("15,45 * * * *", datetime(2026, 1, 5, 9, 45, tzinfo=UTC), True),
        ("0 9-17/4 * * *", datetime(2026, 1, 5, 13, 0, tzinfo=UTC), True),
        ("0 9-17/4 * * *", datetime(2026, 1, 5, 15, 0, tzinfo=UTC), False),
        ("0 0 * * 0", datetime(2026, 1, 4, 0, 0, tzinfo=UTC), True),  # 2026-01-04 is a Sunday
        ("0 0 * * 0", datetime(2026, 1, 5, 0, 0, tzinfo=UTC), False),
        ("0 0 1 * 1", datetime(2026, 1, 5, 0, 0, tzinfo=UTC), True),  # both day fields set: either one
    ],
)
def test_cron_schedule_matches_like_cron(expression: str, at: datetime, fires: bool) -> None:
    assert CronSchedule.parse(expression).matches(at) is fires


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * *", "*/0 * * * *", "MON * * * *"])
def test_bad_cron_expression_is_refused(expression: str) -> None:
    with pytest.raises(RouteConfigError):
        CronSchedule.parse(expression)


@pytest.fixture
def cron_tree(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tree / "api" / "cron").mkdir(parents=True)
    (tree / "api" / "cron" / "sweep.py").write_text(CRON)
    monkeypatch.setenv("ROUTER_TEST_CRON_LOG", str(tmp_path / "cron.log"))
    return tree


def _cron_hits(tree: Path) -> list[dict[str, str]]:
    log = tree / "cron.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_cron_fires_a_real_get_with_the_bearer(cron_tree: Path) -> None:
    at = datetime(2026, 1, 5, 3, 17, tzinfo=UTC)
    with vercel_router.running(cron_tree, cron_secret="s3cret-cron") as server:
        runs = server.fire_crons(at)
    assert [(r.path, r.status) for r in runs] == [("/api/cron/sweep", 200)]
    assert _cron_hits(cron_tree) == [
        {"path": "/api/cron/sweep", "auth": "Bearer s3cret-cron", "agent": "vercel-cron/1.0"}
    ]


def test_cron_without_secret_is_refused_by_the_function(cron_tree: Path) -> None:
    with vercel_router.running(cron_tree, cron_secret=None) as server:
        runs = server.fire_crons(datetime(2026, 1, 5, 3, 17, tzinfo=UTC))
    assert [(r.path, r.status) for r in runs] == [("/api/cron/sweep", 401)]
    assert _cron_hits(cron_tree)[0]["auth"] is None


def test_cron_loop_fires_on_its_schedule_by_itself(cron_tree: Path) -> None:
    # A clock 0.3 s before a minute boundary, so the loop's first round comes at once.
    boundary = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    offset = boundary - datetime.now(UTC) - timedelta(seconds=0.3)
    with vercel_router.running(
        cron_tree, cron_secret="s3cret-cron", fire_crons=True, clock=lambda: datetime.now(UTC) + offset
    ):
        deadline = time.monotonic() + 10
        while not _cron_hits(cron_tree) and time.monotonic() < deadline:
            time.sleep(0.05)
    hits = _cron_hits(cron_tree)
    assert len(hits) == 1
    assert hits[0]["auth"] == "Bearer s3cret-cron"


def test_cli_prints_ready_serves_and_exits_cleanly_on_sigterm(tree: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.vercel_router", "--port", "0", "--root", str(tree), "--no-crons"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRON_SECRET": "x"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("ready http://127.0.0.1:"), line
        url = line.removeprefix("ready ")
        assert httpx.get(f"{url}/api/v1/calls/z/accept", timeout=10).json()["query"] == {"call_id": "z"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def test_router_serves_the_merged_openapi_and_docs_page() -> None:
    from fastapi.testclient import TestClient

    from localdev.vercel_router import ROOT, build_app

    with TestClient(build_app(ROOT, cron_secret=None, fire_crons=False)) as client:
        doc = client.get("/api/v1/openapi.json")
        assert doc.status_code == 200
        paths = doc.json()["paths"]
        assert "/api/tips/send" in paths and "/api/calls/{call_id}/accept" in paths
        page = client.get("/api/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/api/tips/send" in page.text

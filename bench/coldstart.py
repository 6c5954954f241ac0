"""Row: cold start. For every api/ file, a fresh process imports it and answers its first request; beside it
a bare FastAPI app with one route, measured the same way. Median of N fresh processes each.

The probe (`python -m bench.coldstart --probe ...`) loads the file exactly as the router does
(`load_function`), then hands its ASGI app one request directly (no server, no socket): the first request's
own work (rate limiter, token check, opening the pool, validation) counts, Python's start-up is reported apart
(the parent's wall time from spawn to exit). Beside the bare app, the floor function (create_app() and one
pooled SELECT) shows what every function of this codebase pays before its own code. The request: the file's first declared method, its URL with
random ids, a seeded fan's token, `{}` as a JSON body. So most writes answer 401/404/422 before touching data
(crons and jobs get no secret and answer 401): the figure is what every first request pays, not a handler's
worst path. The heaviest file is then imported once under `-X importtime` to name what it loads.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BARE = "bench/functions/bare_fastapi.py"
BARE_PATH = "/api/bench/bare"
FLOOR = (
    "bench/functions/floor.py"  # create_app() and the pool: what any function of this codebase starts from
)
FLOOR_PATH = "/api/bench/floor"
_METHOD = re.compile(r"@app\.(get|post|put|delete|patch)\(|@app\.api_route\([^)]*methods=\[\"(\w+)\"")
_PARAM = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")


def method_of(path: Path) -> str:
    """The first HTTP method the file's app declares (GET when it can't tell)."""
    m = _METHOD.search(path.read_text())
    if m is None:
        return "GET"
    return (m.group(1) or m.group(2)).upper()


def url_of(rel: str) -> tuple[str, str]:
    """(path, query) a request to this file uses: random ids, a plausible username, Vercel's params query."""
    params: dict[str, str] = {}
    parts = []
    for part in Path(rel).with_suffix("").parts:
        m = _PARAM.fullmatch(part)
        if m is None:
            parts.append(part)
            continue
        name = m.group(1)
        value = "bench_creator_1" if name == "username" else str(uuid.uuid4())
        params[name] = value
        parts.append(value)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return "/" + "/".join(parts), query


# --- the probe (a fresh process) ------------------------------------------------------------------------------


def probe(rel: str, method: str, path: str, query: str, token: str, ip: str) -> dict[str, Any]:
    """Import one file and answer one request; milliseconds of each part."""
    import asyncio

    from localdev.vercel_router import app_of, load_function

    t0 = time.perf_counter()
    app = app_of(load_function(Path(rel), root=ROOT), Path(rel))
    t1 = time.perf_counter()
    body = b"{}" if method != "GET" else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:3000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-real-ip", ip.encode()),
        ],
        "client": (ip, 50000),
        "server": ("127.0.0.1", 3000),
    }
    answered: dict[str, Any] = {}

    async def call() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                answered["at"] = time.perf_counter()

        await app(scope, receive, send)

    asyncio.run(call())
    t2 = answered.get("at", time.perf_counter())
    return {
        "import_ms": (t1 - t0) * 1000,
        "first_request_ms": (t2 - t1) * 1000,
        "total_ms": (t2 - t0) * 1000,
        "status": answered.get("status"),
    }


def _probe_main(argv: list[str]) -> int:
    rel, method, path, query, token, ip = argv
    print(json.dumps(probe(rel, method, path, query, token, ip)), flush=True)
    return 0


# --- the parent -----------------------------------------------------------------------------------------------


def _spawn(
    python: str, env: dict[str, str], rel: str, method: str, path: str, query: str, token: str, ip: str
) -> dict[str, Any]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [python, "-m", "bench.coldstart", "--probe", rel, method, path, query, token, ip],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = (time.perf_counter() - t0) * 1000
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout)[-1500:], "wall_ms": wall}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_ms"] = wall
    return result


def import_profile(python: str, env: dict[str, str], rel: str, runs: int = 3) -> dict[str, float]:
    """Median over `runs` processes of the import self time per top-level package loading `rel` loads."""
    profiles = [_import_profile(python, env, rel) for _ in range(runs)]
    names = {name for p in profiles for name in p}
    return {name: statistics.median(p.get(name, 0.0) for p in profiles) for name in names}


def _import_profile(python: str, env: dict[str, str], rel: str) -> dict[str, float]:
    """Milliseconds of import self time per top-level package (`python -X importtime`), not counting what the
    loader itself had imported before (the probe's clock starts after that too)."""
    code = (
        "import pathlib; from localdev.vercel_router import load_function; import colorsys; "
        f"load_function(pathlib.Path({rel!r}), root=pathlib.Path({str(ROOT)!r}))"
    )
    done = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    totals: dict[str, float] = {}
    started = False
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m is None:
            continue
        if m.group(3) == "colorsys":  # the marker: everything after it is the function's own
            started = True
            continue
        if started:
            name = m.group(3).split(".")[0]
            totals[name] = totals.get(name, 0.0) + int(m.group(1)) / 1000
    return totals


def _ranked(profile: dict[str, float], top: int = 8) -> list[dict[str, Any]]:
    ranked = sorted(profile.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "self_ms": round(ms, 1)} for name, ms in ranked if ms >= 0.5]


def run(
    env: dict[str, str],
    *,
    python: str,
    runs: int,
    files: list[str] | None = None,
    token: str,
    first_ip: int = 1,
) -> dict[str, Any]:
    """Median over `runs` fresh processes for every api/ file (or `files`), the floor and the bare app."""
    env = {**env, "PYTHONPATH": str(ROOT)}
    from localdev.vercel_router import function_files

    rels = files if files is not None else [p.as_posix() for p in function_files(ROOT)]
    targets: dict[str, tuple[str, str, str]] = {BARE: ("GET", BARE_PATH, ""), FLOOR: ("GET", FLOOR_PATH, "")}
    for rel in rels:
        path, query = url_of(rel)
        targets[rel] = (method_of(ROOT / rel), path, query)
    samples: dict[str, list[dict[str, Any]]] = {rel: [] for rel in targets}
    ip_n = first_ip
    for _ in range(runs):
        for rel, (method, path, query) in targets.items():
            ip_n += 1
            ip = f"127.9.{ip_n // 250}.{1 + ip_n % 250}"
            samples[rel].append(_spawn(python, env, rel, method, path, query, token, ip))
    functions: dict[str, Any] = {}
    for rel, results in samples.items():
        ok = [r for r in results if "error" not in r]
        entry: dict[str, Any] = {"method": targets[rel][0], "runs": len(ok)}
        if ok:
            for key in ("import_ms", "first_request_ms", "total_ms", "wall_ms"):
                entry[key] = statistics.median(r[key] for r in ok)
            entry["statuses"] = sorted({r["status"] for r in ok if r.get("status") is not None})
        if len(ok) < len(results):
            entry["errors"] = [r["error"] for r in results if "error" in r][:1]
        functions[rel] = entry
    bare, floor = functions.pop(BARE), functions.pop(FLOOR)
    measured = {rel: f for rel, f in functions.items() if "total_ms" in f}
    for f in [*measured.values(), floor]:
        if "total_ms" in f:
            f["over_bare"] = f["total_ms"] / max(bare.get("total_ms", 0.0), 1e-9)
    heaviest = max(measured, key=lambda rel: measured[rel]["total_ms"]) if measured else None
    over = sorted(
        (rel for rel, f in measured.items() if f["over_bare"] > 1.5), key=lambda r: -measured[r]["over_bare"]
    )
    profiles = {name: import_profile(python, env, name) for name in (BARE, FLOOR, heaviest) if name}
    beyond_floor = {}
    if heaviest:
        beyond_floor = {
            k: v - profiles[FLOOR].get(k, 0.0)
            for k, v in profiles[heaviest].items()
            if v - profiles[FLOOR].get(k, 0.0) > 0
        }
    return {
        "runs": runs,
        "bare": bare,
        "floor": floor,
        "functions": functions,
        "heaviest": heaviest,
        "heaviest_imports": _ranked(profiles[heaviest]) if heaviest else [],
        "heaviest_beyond_floor": _ranked(beyond_floor, top=6),
        "floor_imports": _ranked(profiles[FLOOR]),
        "bare_imports": _ranked(profiles[BARE]),
        "over_1_5x": over,
        "failed": sorted(rel for rel, f in functions.items() if "total_ms" not in f),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        sys.exit(_probe_main(sys.argv[2:]))
    sys.exit("usage: python -m bench.coldstart --probe FILE METHOD PATH QUERY TOKEN IP")

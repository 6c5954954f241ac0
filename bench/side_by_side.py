"""Row: this API's functions beside two references, one process each, with an external load generator (wrk).

References (bench/references, copies of ../shared/bench): the Express + pg + jsonwebtoken stack the API replaces,
and the floor, bare FastAPI + psycopg pool + PyJWT with no middleware. Each function is one `api/` file's app
alone under uvicorn (bench.serve_one), as Vercel runs it, with everything on: the Redis-backed rate limiter
through the Upstash gateway, presence, the request log. Tokens (seeded fans) and `x-real-ip` rotate per request,
so no per-user or per-IP limit trips. Targets alternate within each round; the figure is the median of the
rounds. Needs `wrk` (Debian package) and, for the Express peer, `node`/`npm` (else that reference is left out).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import auth, seed, stack

PEER_DIR = stack.ROOT / "bench" / "references" / "peer-express"
BALANCE = "/api/tokens/balance"
FUNCTIONS = {
    "balance": ("api/tokens/balance.py", "GET", BALANCE),
    "tips": ("api/tips/send.py", "POST", "/api/tips/send"),
    "active_sessions": ("api/stats/active-sessions.py", "GET", "/api/stats/active-sessions"),
}
# (target, clients): what each round measures.
PLAN = [
    ("express", 1), ("floor", 1), ("balance", 1), ("tips", 1), ("active_sessions", 1),
    ("express", 32), ("floor", 32), ("balance", 32),
]  # fmt: skip

LUA = """
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local method, creator = os.getenv("METHOD"), os.getenv("CREATOR")
local i = tonumber(os.getenv("OFFSET") or "0")
request = function()
  i = i + 1
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  local headers = {["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1], ["x-real-ip"] = ip}
  if method == "POST" then
    headers["Content-Type"] = "application/json"
    local body = string.format('{"toCreatorId":"%s","amountTokens":1,"message":"wrk %d %d"}', creator, i, os.time())
    return wrk.format("POST", nil, headers, body)
  end
  return wrk.format("GET", nil, headers)
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, clients: int, seconds: float, env: dict[str, str]) -> dict[str, float]:
    """One wrk run: req/s, p50, p99 (ms), non-2xx count."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", env["LUA_FILE"], url],
        capture_output=True, text=True, timeout=seconds + 30, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk {url} ({env.get('NAME')}) failed: {(done.stdout + done.stderr)[-800:]}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"unreadable wrk output: {out[-800:]}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "non2xx": int(bad.group(1)) if bad else 0,
        "requests": int(total.group(1)),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((stack.HOST, 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[Any], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the Express peer exited")
        with contextlib.suppress(OSError), socket.create_connection((stack.HOST, port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("the Express peer did not listen")


@contextlib.contextmanager
def express_peer(database_url: str, secret: str) -> Iterator[str | None]:
    """The Express reference's URL, or None when node/npm are missing or its install fails."""
    if not (shutil.which("node") and shutil.which("npm")):
        yield None
        return
    if not (PEER_DIR / "node_modules").is_dir():
        done = subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=PEER_DIR,
                              capture_output=True, timeout=300, check=False)  # fmt: skip
        if done.returncode != 0:
            yield None
            return
    port = _free_port()
    stack.LOG_DIR.mkdir(parents=True, exist_ok=True)
    es_log = open(stack.LOG_DIR / "ref-express.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["node", "server.js"], cwd=PEER_DIR, stdout=es_log, stderr=subprocess.STDOUT,
        env={**os.environ, "DATABASE_URL": database_url, "SUPABASE_JWT_SECRET": secret, "PORT": str(port)},
    )  # fmt: skip
    try:
        _wait_port(port, proc)
        yield f"http://{stack.HOST}:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        es_log.close()


def _as_url(conninfo: str) -> str:
    """A libpq conninfo as the postgresql:// URL node-postgres and the floor read."""
    from psycopg.conninfo import conninfo_to_dict

    d = conninfo_to_dict(conninfo)
    auth_part = f"{d.get('user', 'postgres')}" + (f":{d['password']}" if d.get("password") else "")
    return f"postgresql://{auth_part}@{d.get('host', stack.HOST)}:{d.get('port', 5432)}/{d['dbname']}"


def run(st: stack.Stack, *, fans: int, creator: int, seconds: float, rounds: int) -> dict[str, Any]:
    """Every target of PLAN, `rounds` times, alternating; medians per (target, clients)."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    env = st.env
    secret = env["SUPABASE_JWT_SECRET"]
    with contextlib.ExitStack() as es:
        tmp = Path(es.enter_context(tempfile.TemporaryDirectory(prefix="bench-sbs-")))
        tokens = tmp / "tokens"
        tokens.write_text("\n".join(auth.token(seed.fan_id(i)) for i in range(1, fans + 1)) + "\n")
        lua = tmp / "rotate.lua"
        lua.write_text(LUA)
        urls: dict[str, str] = {}
        floor = stack.start_child(
            "ref-floor", ["-m", "bench.serve_one", "bench.references.floor_fastapi", "--log-file", str(tmp / "f")],
            {"DATABASE_URL": env["DATABASE_URL"], "SUPABASE_JWT_SECRET": secret},
        )  # fmt: skip
        es.callback(floor.stop)
        urls["floor"] = floor.url + BALANCE
        for name, (file, _method, path) in FUNCTIONS.items():
            child = stack.start_child(
                f"fn-{name}", ["-m", "bench.serve_one", file, "--log-file", str(tmp / name)], env
            )
            es.callback(child.stop)
            urls[name] = child.url + path
        peer = es.enter_context(express_peer(_as_url(env["DATABASE_URL"]), secret))
        if peer:
            urls["express"] = peer + BALANCE
        base = {"TOKENS_FILE": str(tokens), "LUA_FILE": str(lua), "CREATOR": str(seed.creator_id(creator))}
        time.sleep(0.5)
        for name, url in urls.items():  # warm every pool and import before measuring
            method = FUNCTIONS.get(name, ("", "GET", ""))[1]
            wrk(url, 1, 1, {**base, "METHOD": method, "OFFSET": "7000000", "NAME": name})
        runs: dict[str, list[dict[str, float]]] = {}
        offset = 0
        for _ in range(rounds):
            for name, clients in PLAN:
                if name not in urls:
                    continue
                offset += 100_000
                method = FUNCTIONS.get(name, ("", "GET", ""))[1]
                figures = wrk(urls[name], clients, seconds, {**base, "METHOD": method, "OFFSET": str(offset)})
                runs.setdefault(f"{name}@{clients}", []).append(figures)
    medians = {
        key: {m: statistics.median(r[m] for r in rs) for m in ("rps", "p50_ms", "p99_ms")}
        | {"non2xx": sum(r["non2xx"] for r in rs), "requests": sum(r["requests"] for r in rs)}
        for key, rs in runs.items()
    }
    return {"seconds": seconds, "rounds": rounds, "express": "express@1" in medians, "targets": medians}

"""The local Upstash gateway: the real upstash-redis and upstash-ratelimit SDKs against real Redis through it."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_py
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from localdev.upstash_gateway import Gateway, running

REDIS_URL = os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "gateway-test-token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with running(redis_url=REDIS_URL, token=TOKEN) as gw:
        yield gw


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"gwtest:{uuid.uuid4().hex}:"
    yield value
    direct = redis_py.Redis.from_url(REDIS_URL)
    try:
        keys = list(direct.scan_iter(match=value + "*", count=1000))
        if keys:
            direct.delete(*keys)
    finally:
        direct.close()


@pytest.fixture
def sdk(gateway: Gateway) -> Iterator[Redis]:
    client = Redis(gateway.url, gateway.token, rest_retries=0, allow_telemetry=False)
    yield client
    client.close()


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    """Raw HTTP to the gateway, for reply shapes the SDK hides."""
    with httpx.Client(
        base_url=gateway.url, headers={"Authorization": f"Bearer {gateway.token}"}, timeout=5, trust_env=False
    ) as client:
        yield client


def test_strings_with_expiry_round_trip(sdk: Redis, prefix: str) -> None:
    k = prefix + "greeting"
    assert sdk.set(k, "hello", ex=60) is True
    assert sdk.get(k) == "hello"
    assert 0 < sdk.ttl(k) <= 60
    assert sdk.set(k, "other", nx=True) is False  # NX refuses an existing key
    assert sdk.getdel(k) == "hello"
    assert sdk.get(k) is None


def test_hashes_come_back_as_dicts(sdk: Redis, prefix: str) -> None:
    k = prefix + "hash"
    assert sdk.hset(k, values={"name": "ada", "status": "OK", "n": "1"}) == 3
    assert sdk.hget(k, "name") == "ada"
    assert sdk.hincrby(k, "n", 4) == 5
    assert sdk.hgetall(k) == {"name": "ada", "status": "OK", "n": "5"}
    assert sdk.hexists(k, "name") is True
    assert sdk.hdel(k, "name") == 1


def test_sets_are_idempotent(sdk: Redis, prefix: str) -> None:
    k = prefix + "set"
    assert sdk.sadd(k, "a", "b") == 2
    assert sdk.sadd(k, "a") == 0
    assert sorted(sdk.smembers(k)) == ["a", "b"]
    assert sdk.sismember(k, "a") is True
    assert sdk.srem(k, "a") == 1
    assert sdk.scard(k) == 1


def test_sorted_set_scores_are_floats_in_the_sdk_and_strings_on_the_wire(
    sdk: Redis, http: httpx.Client, prefix: str
) -> None:
    k = prefix + "zset"
    assert sdk.zadd(k, {"low": 1.5, "high": 10}) == 2
    assert sdk.zscore(k, "low") == 1.5
    assert sdk.zincrby(k, 0.25, "low") == 1.75
    assert sdk.zrange(k, 0, -1, withscores=True) == [("low", 1.75), ("high", 10.0)]
    assert sdk.zrevrange(k, 0, 0) == ["high"]
    raw = http.post("/", json=["ZSCORE", k, "low"]).json()
    assert raw == {"result": "1.75"}


def test_incr_and_incrbyfloat(sdk: Redis, prefix: str) -> None:
    k = prefix + "counter"
    assert sdk.incr(k) == 1
    assert sdk.incrby(k, 41) == 42
    assert sdk.incrbyfloat(prefix + "f", 0.5) == 0.5


def test_pipeline_returns_each_result_in_order(sdk: Redis, prefix: str) -> None:
    pipe = sdk.pipeline()
    pipe.set(prefix + "p", "1")
    pipe.incr(prefix + "p")
    pipe.get(prefix + "p")
    pipe.sadd(prefix + "ps", "x")
    assert pipe.exec() == [True, 2, "2", 1]


def test_pipeline_error_belongs_to_its_own_command(http: httpx.Client, prefix: str) -> None:
    reply = http.post(
        "/pipeline",
        json=[["SET", prefix + "s", "v"], ["INCR", prefix + "s"], ["SUBSCRIBE", "x"], ["GET", prefix + "s"]],
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body[0] == {"result": "OK"}
    assert body[1]["error"].startswith("ERR value is not an integer")
    assert body[2]["error"].startswith("ERR Command is not available")
    assert body[3] == {"result": "v"}


def test_multi_exec_is_atomic_under_concurrency(gateway: Gateway, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    torn: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        client = Redis(gateway.url, gateway.token, rest_retries=0, allow_telemetry=False)
        try:
            for _ in range(40):
                tx = client.multi()
                tx.incr(a)
                tx.incr(b)
                tx.exec()
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    def reader() -> None:
        client = Redis(gateway.url, gateway.token, rest_retries=0, allow_telemetry=False)
        try:
            for _ in range(80):
                tx = client.multi()
                tx.get(a)
                tx.get(b)
                got_a, got_b = (int(v) if isinstance(v, str) else 0 for v in tx.exec())
                if got_a != got_b:
                    torn.append((got_a, got_b))
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=writer) for _ in range(3)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert not torn, "a reader saw one counter incremented without the other"
    direct = redis_py.Redis.from_url(REDIS_URL)
    try:
        assert direct.mget(a, b) == [b"120", b"120"]
    finally:
        direct.close()


def test_multi_exec_with_a_bad_command_applies_nothing(http: httpx.Client, sdk: Redis, prefix: str) -> None:
    reply = http.post("/multi-exec", json=[["SET", prefix + "t", "v"], ["NOSUCHCOMMAND"]])
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("ERR unknown command")
    assert sdk.get(prefix + "t") is None


def test_eval_runs_scripts_including_upstash_shebang_flags(sdk: Redis, prefix: str) -> None:
    k = prefix + "ev"
    assert sdk.eval("return {KEYS[1], ARGV[1], 7}", keys=[k], args=["v"]) == [k, "v", 7]
    flagged = "#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    assert sdk.eval(flagged, keys=[k], args=["3"]) == 3
    sha = sdk.script_load(flagged)
    assert sdk.script_exists(sha) == [True]
    assert sdk.evalsha(sha, keys=[k], args=["2"]) == 5


def test_unicode_and_binary_values_round_trip(sdk: Redis, http: httpx.Client, prefix: str) -> None:
    text = 'héllo ✓ 🚀 \n\t"quoted" OK'
    sdk.set(prefix + "u", text)
    assert sdk.get(prefix + "u") == text
    assert sdk.set(prefix + "ok", "OK") is True
    assert sdk.get(prefix + "ok") == "OK"
    binary = bytes(range(256))
    direct = redis_py.Redis.from_url(REDIS_URL)
    try:
        direct.set(prefix + "bin", binary)
    finally:
        direct.close()
    raw = http.post("/", json=["GET", prefix + "bin"], headers={"Upstash-Encoding": "base64"}).json()
    assert base64.b64decode(raw["result"]) == binary


def test_base64_applies_to_every_string_except_ok(http: httpx.Client, prefix: str) -> None:
    b64 = {"Upstash-Encoding": "base64"}
    assert http.post("/", json=["SET", prefix + "k", "v"], headers=b64).json() == {"result": "OK"}
    assert http.post("/", json=["PING"], headers=b64).json() == {"result": base64.b64encode(b"PONG").decode()}
    assert http.post("/", json=["RPUSH", prefix + "l", "a", "b"], headers=b64).json() == {"result": 2}
    listed = http.post("/", json=["LRANGE", prefix + "l", 0, -1], headers=b64).json()
    assert listed == {"result": [base64.b64encode(b"a").decode(), base64.b64encode(b"b").decode()]}
    assert http.post("/", json=["GET", prefix + "missing"], headers=b64).json() == {"result": None}
    assert http.post("/", json=["GET", prefix + "k"]).json() == {"result": "v"}  # without the header: plain


def test_bad_or_missing_token_is_401_wrongpass(gateway: Gateway) -> None:
    wrongpass = {"error": "WRONGPASS invalid or missing auth token"}
    with httpx.Client(base_url=gateway.url, timeout=5, trust_env=False) as client:
        missing = client.post("/", json=["PING"])
        bad = client.post("/pipeline", json=[["PING"]], headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, missing.json()) == (401, wrongpass)
    assert (bad.status_code, bad.json()) == (401, wrongpass)
    wrong = Redis(gateway.url, "not-the-token", rest_retries=0, allow_telemetry=False)
    with pytest.raises(UpstashError, match="WRONGPASS"):
        wrong.get("anything")
    wrong.close()


def test_sync_token_is_echoed(http: httpx.Client) -> None:
    reply = http.post("/", json=["PING"], headers={"Upstash-Sync-Token": "sync-123"})
    assert reply.headers["Upstash-Sync-Token"] == "sync-123"


def test_path_form_commands(http: httpx.Client, prefix: str) -> None:
    assert http.get(f"/set/{prefix}path/hello%20world").json() == {"result": "OK"}
    assert http.get(f"/get/{prefix}path").json() == {"result": "hello world"}
    assert http.post(f"/set/{prefix}body", content=b"from body").json() == {"result": "OK"}
    assert http.get(f"/get/{prefix}body").json() == {"result": "from body"}
    assert http.get(f"/set/{prefix}a%2Fb/100%25").json() == {"result": "OK"}
    assert http.post("/", json=["GET", prefix + "a/b"]).json() == {"result": "100%"}


def test_connection_state_commands_are_refused_and_pool_stays_usable(http: httpx.Client) -> None:
    for command in (["SELECT", "1"], ["MULTI"], ["SUBSCRIBE", "ch"], ["CLIENT", "REPLY", "OFF"]):
        reply = http.post("/", json=command)
        assert reply.status_code == 400
        assert reply.json()["error"].startswith("ERR Command is not available")
    assert http.post("/", json=["ECHO", "still fine"]).json() == {"result": "still fine"}


def test_command_errors_keep_redis_error_codes(http: httpx.Client, sdk: Redis, prefix: str) -> None:
    sdk.set(prefix + "str", "x")
    wrongtype = http.post("/", json=["HGET", prefix + "str", "f"])
    assert wrongtype.status_code == 400
    assert wrongtype.json()["error"].startswith("WRONGTYPE ")
    noscript = http.post("/", json=["EVALSHA", "0" * 40, "0"]).json()
    assert noscript["error"].startswith("NOSCRIPT ")
    assert http.post("/", content=b"not json").json()["error"].startswith("ERR")


def test_fixed_window_ratelimit_through_gateway(sdk: Redis, prefix: str) -> None:
    # A one-day window: the test never straddles a window boundary.
    limiter = Ratelimit(sdk, FixedWindow(max_requests=3, window=1, unit="d"), prefix=prefix + "fixed")
    results = [limiter.limit("client") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert limiter.get_remaining("client") == 0
    assert limiter.limit("other").allowed is True


def test_sliding_window_ratelimit_through_gateway(sdk: Redis, prefix: str) -> None:
    limiter = Ratelimit(sdk, SlidingWindow(max_requests=3, window=1, unit="d"), prefix=prefix + "sliding")
    results = [limiter.limit("client") for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert results[0].reset > time.time()
    assert limiter.get_remaining("client") == 0
    assert limiter.limit("other").allowed is True


def test_dead_redis_is_a_prompt_error_not_a_hang() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with running(redis_url=f"redis://127.0.0.1:{dead_port}/0", token=TOKEN) as gw:
        client = Redis(gw.url, gw.token, rest_retries=0, allow_telemetry=False)
        started = time.monotonic()
        with pytest.raises(UpstashError, match="Redis unavailable"):
            client.get("anything")
        assert time.monotonic() - started < 1.0
        client.close()


def test_round_trips_have_no_nagle_delay(sdk: Redis, prefix: str) -> None:
    # Without TCP_NODELAY on accepted sockets every reply waited ~40 ms for a delayed ACK.
    sdk.set(prefix + "fast", "1")
    started = time.monotonic()
    for _ in range(50):
        sdk.get(prefix + "fast")
    assert (time.monotonic() - started) / 50 < 0.02


def test_cli_prints_ready_and_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localdev.upstash_gateway",
            "--port",
            "0",
            "--redis-url",
            REDIS_URL,
            "--token",
            TOKEN,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = (
            proc.stdout.readline().strip()
        )  # bounded by the test timeout; the server prints it within a second
        assert line.startswith("ready http://127.0.0.1:")
        url = line.split(" ", 1)[1]
        reply = httpx.post(url, json=["PING"], headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False)
        assert reply.json() == {"result": "PONG"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()

"""Rate limits through real Redis via the Upstash gateway: per user and trusted IP, still enforced without Redis."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis as redis_py
from starlette.requests import Request

from lib import config, ratelimit, redis
from lib.errors import RateLimited
from localdev.upstash_gateway import Gateway, running

REDIS_URL = os.environ.get("DIGIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = "ratelimit-test-token"


@contextmanager
def settings(**env: str) -> Iterator[None]:
    """Point Settings at these environment values for the block (and forget every client built from them)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    config.reset()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.reset()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(real_ip: str | None = None, *, peer: str = "10.0.0.1", **headers: str) -> Request:
    """A real Starlette request as Vercel would hand it over (header names given with '_' for '-')."""
    raw = [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()]
    if real_ip is not None:
        raw.append((b"x-real-ip", real_ip.encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/auth/sync-user",
        "raw_path": b"/api/auth/sync-user",
        "query_string": b"",
        "headers": raw,
        "client": (peer, 40000),
        "server": ("testserver", 443),
        "scheme": "https",
    }
    return Request(scope)


def away_from_window_edge() -> None:
    """Start a burst at least 3 s before the minute turns, so it is counted in one window (waits at most 3 s)."""
    into = time.time() % ratelimit.WINDOW_S
    if into > ratelimit.WINDOW_S - 3:
        time.sleep(ratelimit.WINDOW_S - into + 0.05)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with running(redis_url=REDIS_URL, token=TOKEN) as gw:
        yield gw


@pytest.fixture
def shared(gateway: Gateway) -> Iterator[str]:
    """Settings pointed at the gateway with a key prefix of this test's own; yields the prefix."""
    prefix = f"t:rl:{uuid.uuid4().hex}:"
    with settings(
        UPSTASH_REDIS_REST_URL=gateway.url,
        UPSTASH_REDIS_REST_TOKEN=TOKEN,
        REDIS_KEY_PREFIX=prefix,
        REDIS_TIMEOUT_S="0.5",
    ):
        away_from_window_edge()
        yield prefix
    direct = redis_py.Redis.from_url(REDIS_URL)
    try:
        keys = list(direct.scan_iter(match=prefix + "*", count=1000))
        if keys:
            direct.delete(*keys)
    finally:
        direct.close()


def test_21st_auth_request_in_a_minute_is_429_with_headers(shared: str) -> None:
    for n in range(20):
        headers = ratelimit.enforce(request("203.0.113.7"), "auth", "user-1")
        assert headers["RateLimit-Limit"] == "20"
        assert headers["RateLimit-Remaining"] == str(19 - n)
        assert 1 <= int(headers["RateLimit-Reset"]) <= 60
    with pytest.raises(RateLimited) as refused:
        ratelimit.enforce(request("203.0.113.7"), "auth", "user-1")
    assert refused.value.status == 429
    assert refused.value.headers["RateLimit-Limit"] == "20"
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert 1 <= int(refused.value.headers["RateLimit-Reset"]) <= 60


def test_counts_live_in_redis_so_instances_share_them(shared: str) -> None:
    for _ in range(10):
        ratelimit.enforce(request("203.0.113.8"), "payment", None)
    config.reset()  # a fresh instance: no in-process state survives, the count must come from Redis
    with pytest.raises(RateLimited):
        ratelimit.enforce(request("203.0.113.8"), "payment", None)
    direct = redis_py.Redis.from_url(REDIS_URL)
    try:
        assert list(direct.scan_iter(match=shared + "ratelimit:payment:ip:203.0.113.8:*"))
    finally:
        direct.close()


def test_a_user_is_limited_across_ips(shared: str) -> None:
    for n in range(10):
        ratelimit.enforce(request(f"198.51.100.{n}"), "payment", "user-2")
    with pytest.raises(RateLimited):
        ratelimit.enforce(request("198.51.100.200"), "payment", "user-2")
    ratelimit.enforce(request("198.51.100.200"), "payment", "user-3")  # that IP itself is not exhausted


def test_spoofed_x_forwarded_for_does_not_reset_the_count_but_x_real_ip_separates_clients(
    shared: str,
) -> None:
    for n in range(10):
        ratelimit.enforce(request("192.0.2.10", x_forwarded_for=f"10.1.1.{n}"), "payment", None)
    with pytest.raises(RateLimited):
        ratelimit.enforce(request("192.0.2.10", x_forwarded_for="10.9.9.9"), "payment", None)
    assert ratelimit.enforce(request("192.0.2.11"), "payment", None)["RateLimit-Remaining"] == "9"


def test_buckets_count_separately(shared: str) -> None:
    for _ in range(10):
        ratelimit.enforce(request("192.0.2.20"), "payment", None)
    assert ratelimit.enforce(request("192.0.2.20"), "auth", None)["RateLimit-Remaining"] == "19"
    assert ratelimit.enforce(request("192.0.2.20"), "default", None)["RateLimit-Limit"] == "300"


def test_client_ip_trusts_vercel_headers_only() -> None:
    assert ratelimit.client_ip(request("192.0.2.1", x_vercel_forwarded_for="192.0.2.2")) == "192.0.2.1"
    assert ratelimit.client_ip(request(x_vercel_forwarded_for="192.0.2.2, 10.0.0.9")) == "192.0.2.2"
    assert ratelimit.client_ip(request(x_forwarded_for="192.0.2.3", peer="10.0.0.5")) == "10.0.0.5"
    assert ratelimit.client_ip(request("2001:db8:1:2:aaaa::1")) == ratelimit.client_ip(
        request("2001:db8:1:2::9")
    )
    assert ratelimit.client_ip(request("2001:db8:1:2::1")) != ratelimit.client_ip(request("2001:db8:1:3::1"))
    assert ratelimit.client_ip(request("::ffff:192.0.2.4")) == "192.0.2.4"


def _assert_fallback_limits_fast(caplog: pytest.LogCaptureFixture, budget_s: float) -> None:
    """10 payment requests pass, the 11th is refused, the whole burst stays within budget, one warning."""
    caplog.set_level(logging.WARNING, logger="lib.ratelimit")
    started = time.monotonic()
    for _ in range(10):
        ratelimit.enforce(request("192.0.2.50"), "payment", "user-9")
    with pytest.raises(RateLimited) as refused:
        ratelimit.enforce(request("192.0.2.50"), "payment", "user-9")
    assert time.monotonic() - started < budget_s
    assert "Retry-After" in refused.value.headers
    warnings = [r for r in caplog.records if r.name == "lib.ratelimit" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_unreachable_upstash_falls_back_to_local_limits_quickly(caplog: pytest.LogCaptureFixture) -> None:
    with settings(
        UPSTASH_REDIS_REST_URL=f"http://127.0.0.1:{free_port()}",
        UPSTASH_REDIS_REST_TOKEN=TOKEN,
        REDIS_KEY_PREFIX=f"t:rl:{uuid.uuid4().hex}:",
    ):
        away_from_window_edge()
        _assert_fallback_limits_fast(caplog, budget_s=1.0)


def test_gateway_without_redis_falls_back_to_local_limits_quickly(caplog: pytest.LogCaptureFixture) -> None:
    with (
        running(redis_url=f"redis://127.0.0.1:{free_port()}/0", token=TOKEN) as dead,
        settings(
            UPSTASH_REDIS_REST_URL=dead.url,
            UPSTASH_REDIS_REST_TOKEN=TOKEN,
            REDIS_KEY_PREFIX=f"t:rl:{uuid.uuid4().hex}:",
        ),
    ):
        away_from_window_edge()
        _assert_fallback_limits_fast(caplog, budget_s=1.0)


def test_silent_upstash_times_out_into_local_limits(caplog: pytest.LogCaptureFixture) -> None:
    # Accepts connections (the kernel's backlog) but never answers: the slow-Redis case.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        with settings(
            UPSTASH_REDIS_REST_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
            UPSTASH_REDIS_REST_TOKEN=TOKEN,
            REDIS_KEY_PREFIX=f"t:rl:{uuid.uuid4().hex}:",
            REDIS_TIMEOUT_S="0.2",
        ):
            away_from_window_edge()
            started = time.monotonic()
            ratelimit.enforce(request("192.0.2.60"), "auth", None)
            assert time.monotonic() - started < 0.9  # one timeout, then Redis is not asked again for a while
            started = time.monotonic()
            for _ in range(19):
                ratelimit.enforce(request("192.0.2.60"), "auth", None)
            assert time.monotonic() - started < 0.2
            with pytest.raises(RateLimited):
                ratelimit.enforce(request("192.0.2.60"), "auth", None)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_limits_go_back_to_redis_when_it_recovers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if redis_py.Redis.from_url(url, socket_connect_timeout=0.2).ping():
                    return proc
            except redis_py.ConnectionError:
                time.sleep(0.02)
        proc.kill()
        raise AssertionError("redis-server did not start")

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        proc.wait(timeout=5)

    monkeypatch.setattr(redis.breaker, "cooldown_s", 0.0)  # ask Redis again on the very next request
    caplog.set_level(logging.INFO, logger="lib.ratelimit")
    server = start()
    try:
        with (
            running(redis_url=url, token=TOKEN) as gw,
            settings(UPSTASH_REDIS_REST_URL=gw.url, UPSTASH_REDIS_REST_TOKEN=TOKEN, REDIS_KEY_PREFIX="rl:"),
        ):
            away_from_window_edge()
            ratelimit.enforce(request("192.0.2.70"), "payment", None)
            stop(server)
            ratelimit.enforce(request("192.0.2.70"), "payment", None)  # counted locally
            server = start()
            direct = redis_py.Redis.from_url(url)
            try:
                # The gateway reconnects to the restarted Redis on its own time (slower on a loaded CI box):
                # keep asking, bounded, within the payment limit of 10.
                deadline = time.monotonic() + 5
                for _ in range(8):
                    ratelimit.enforce(request("192.0.2.70"), "payment", None)  # counted in Redis again
                    if list(direct.scan_iter(match="rl:ratelimit:payment:ip:192.0.2.70:*")):
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                assert list(direct.scan_iter(match="rl:ratelimit:payment:ip:192.0.2.70:*"))
            finally:
                direct.close()
    finally:
        stop(server)
    messages = [r.getMessage() for r in caplog.records if r.name == "lib.ratelimit"]
    assert any("unavailable" in m for m in messages)
    assert any("answers again" in m for m in messages)

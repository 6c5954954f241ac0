"""lib.redis: the one "Redis is down, stop asking for a while" breaker every Redis user shares, and the lean
REST pipeline the hot paths (rate limits, presence, the active-sessions count) use, against the real gateway."""

from __future__ import annotations

import ast
import logging
import time
import uuid
from pathlib import Path

import pytest

from lib import presence, redis, stats
from lib.streams import viewers
from tests.conftest import DEAD

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_opens_the_breaker_for_its_cooldown_then_one_caller_tries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    breaker = redis.Breaker(cooldown_s=15.0, clock=clock)
    assert breaker.allow() and not breaker.is_open
    caplog.set_level(logging.WARNING, logger="digis.redis")
    assert breaker.failed(OSError("refused"), "test") is True  # this failure opened it
    assert breaker.failed(OSError("refused"), "test") is False  # already open: not a new opening
    assert [r.name for r in caplog.records] == ["digis.redis"]  # one warning per opening
    assert breaker.is_open and not breaker.allow()
    clock.now += 14.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # half-open: this caller tries ...
    assert not breaker.allow()  # ... and the others keep skipping Redis meanwhile
    assert breaker.record(True) is True  # the trial worked: closed
    assert breaker.allow() and not breaker.is_open
    assert breaker.record(True) is False  # closed stays closed, no state change


def test_a_failed_trial_keeps_it_open_another_cooldown() -> None:
    clock = Clock()
    breaker = redis.Breaker(cooldown_s=10.0, clock=clock)
    breaker.failed(OSError(), "test")
    clock.now += 10.5
    assert breaker.allow()
    assert breaker.record(False) is False
    clock.now += 9.0
    assert not breaker.allow()
    clock.now += 1.5
    assert breaker.allow()


def test_every_redis_user_shares_the_one_breaker_in_lib_redis(clean: None) -> None:
    """Limits, presence, stats and stream viewers: one breaker, and nothing borrows lib.agora's."""
    assert viewers.breaker is redis.breaker
    for module in ("lib/ratelimit.py", "lib/presence.py", "lib/stats.py", "lib/streams/viewers.py"):
        tree = ast.parse((ROOT / module).read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert "lib.agora" not in imported, module
    try:
        redis.breaker.failed(OSError("down"), "test")
        started = time.perf_counter()
        # Redis is healthy, yet nobody asks it while the breaker is open: answers come from the fallbacks.
        assert stats.active_sessions().source == "database"
        assert presence.online_among([uuid.uuid4()]) == set()
        assert presence.touch(uuid.uuid4(), creator=False) is False
        assert viewers.count(uuid.uuid4(), time.time()) is None
        assert time.perf_counter() - started < 0.5
    finally:
        redis.breaker.reset()
    assert stats.active_sessions().source == "redis"


def test_pipeline_runs_commands_in_order_in_one_call(clean: None) -> None:
    key = redis.key("test", uuid.uuid4().hex)
    assert redis.pipeline([["SET", key, "v", "EX", 30], ["GET", key], ["SADD", key + ":s", "a", "b"]]) == [
        "OK",
        "v",
        2,
    ]
    assert redis.pipeline([["SCARD", key + ":s"]]) == [2]  # the kept-alive connection is reused


def test_pipeline_raises_a_redis_error_for_a_failing_command_or_a_dead_server(
    clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = redis.key("test", uuid.uuid4().hex)
    redis.pipeline([["SET", key, "text"]])
    with pytest.raises(redis.REDIS_ERRORS):
        redis.pipeline([["INCR", key]])  # not an integer
    assert redis.pipeline([["GET", key]]) == ["text"]  # the connection survived the command error

    from lib import config

    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", DEAD)
    config.reset()
    try:
        started = time.perf_counter()
        with pytest.raises(redis.REDIS_ERRORS):
            redis.pipeline([["GET", key]])
        assert time.perf_counter() - started < 2.0
    finally:
        monkeypatch.undo()
        config.reset()

"""Redis (Upstash) refusing, hanging, or down behind its REST gateway: money stays exact, active sessions come from
the database, rate limits fall back to per-instance counters (lib.ratelimit's documented fallback), and no request
waits longer than a second for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lib import stats
from lib.config import get_settings
from lib.ratelimit import LIMITS
from localdev import upstash_gateway
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.conftest import TestUser as Person
from tests.faults import servers
from tests.faults.books import (
    WEBHOOK,
    WEBHOOK_PATH,
    assert_books_balance,
    balance,
    count,
    intent_succeeded,
    new_pi,
    signed,
)
from tests.faults.conftest import Timed, call, record

MODES = ["refused", "hanging", "redis-behind-gateway-down"]
LATENCY_BUDGET_S = 1.0


@contextmanager
def redis_down(mode: str, set_env: SetEnv) -> Iterator[None]:
    """UPSTASH_REDIS_REST_URL at a refused port, a server that never answers, or a gateway whose Redis is gone."""
    if mode == "refused":
        set_env(UPSTASH_REDIS_REST_URL=f"http://127.0.0.1:{servers.dead_port()}")
        yield
    elif mode == "hanging":
        with servers.hanging() as hang:
            set_env(UPSTASH_REDIS_REST_URL=hang.url)
            yield
    else:
        token = TEST_ENV["UPSTASH_REDIS_REST_TOKEN"]
        dead_redis = f"redis://127.0.0.1:{servers.dead_port()}/0"
        with upstash_gateway.running(redis_url=dead_redis, token=token, redis_timeout_s=0.5) as gw:
            set_env(UPSTASH_REDIS_REST_URL=gw.url)
            yield


class Budget:
    """Every request of a test, timed; none may keep its client waiting past the budget."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.timings: list[tuple[str, Timed]] = []

    def __call__(self, what: str, t: Timed) -> Timed:
        self.timings.append((what, t))
        assert t.response_s < LATENCY_BUDGET_S, f"{what} kept the client waiting {t.ms()}"
        return t

    def report(self) -> None:
        worst = max(self.timings, key=lambda x: x[1].total_s)
        slowest = max(t.response_s for _, t in self.timings)
        record(
            f"{self.label}: {len(self.timings)} requests, slowest response {slowest * 1000:.0f} ms, "
            f"longest invocation {worst[0]} {worst[1].ms()}"
        )


def test_redis_is_really_used_when_it_is_up(fan: Person) -> None:
    """The control: with Redis up, active sessions come from Redis (so the fallback below is a real switch)."""
    t = call("stats/active-sessions.py", "GET", "/api/stats/active-sessions")
    assert t.status == 200 and t.json()["source"] == "redis"
    health = call("health.py", "GET", "/api/health").json()
    assert health["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("mode", MODES)
def test_with_redis_down_money_is_exact_sessions_come_from_the_database_and_nothing_waits(
    fan: Person, creator: Person, set_env: SetEnv, mode: str
) -> None:
    budget = Budget(f"redis {mode}")
    with redis_down(mode, set_env):
        payload = intent_succeeded(new_pi(), fan.id, 200, 1900)
        t = budget("webhook", call(WEBHOOK, "POST", WEBHOOK_PATH, content=payload, headers=signed(payload)))
        assert t.status == 200, t.response.text
        for n in range(3):
            t = budget(
                "tip",
                call(
                    "tips/send.py",
                    "POST",
                    "/api/tips/send",
                    json={"toCreatorId": str(creator.id), "amountTokens": 30},
                    headers={**fan.headers, "Idempotency-Key": f"redis-down-{n}"},
                ),
            )
            assert t.status == 200 and t.json()["new_balance"] == 300 - 30 * (n + 1), t.response.text
        t = budget(
            "call request",
            call(
                "calls/request.py",
                "POST",
                "/api/calls/request",
                json={"creatorId": str(creator.id)},
                headers=fan.headers,
            ),
        )
        assert t.status == 200, t.response.text
        call_id = t.json()["callId"]
        t = budget(
            "call accept",
            call(
                "calls/[call_id]/accept.py", "POST", f"/api/calls/{call_id}/accept", headers=creator.headers
            ),
        )
        assert t.status == 200, t.response.text
        t = budget("active sessions", call("stats/active-sessions.py", "GET", "/api/stats/active-sessions"))
        assert (t.json()["count"], t.json()["source"]) == (1, "database")
        t = budget(
            "call end",
            call("calls/[call_id]/end.py", "POST", f"/api/calls/{call_id}/end", headers=fan.headers),
        )
        assert t.status == 200 and t.json()["totalCost"] == 10, t.response.text
        t = budget("active sessions", call("stats/active-sessions.py", "GET", "/api/stats/active-sessions"))
        assert (t.json()["count"], t.json()["source"]) == (0, "database")
        t = budget("balance", call("tokens/balance.py", "GET", "/api/tokens/balance", headers=fan.headers))
        assert t.json()["balance"] == 100 + 200 - 90 - 10
        t = budget("health", call("health.py", "GET", "/api/health"))
        assert t.status == 200 and t.json()["status"] == "degraded"
        assert t.json()["checks"] == {"database": "ok", "redis": "down"}
    budget.report()
    assert (balance(fan.id), balance(creator.id)) == (200, 100)
    assert count("tips") == 3
    assert_books_balance()


@pytest.mark.parametrize("mode", MODES)
def test_with_redis_down_rate_limits_hold_per_instance(fan: Person, set_env: SetEnv, mode: str) -> None:
    """lib.ratelimit's fallback: the same limits, counted in-process; the request after the limit is a 429."""
    budget = Budget(f"redis {mode} rate limit")
    limit = LIMITS["payment"]
    with redis_down(mode, set_env):
        # 51 is not a pack: a 422 after the limit was counted, so no Stripe call is needed to spend the budget.
        codes = [
            budget(
                "purchase",
                call(
                    "tokens/purchase.py",
                    "POST",
                    "/api/tokens/purchase",
                    json={"tokenAmount": 51, "paymentMethodId": "pm_card_visa"},
                    headers={**fan.headers, "x-real-ip": "203.0.113.9"},
                ),
            )
            for _ in range(limit + 1)
        ]
    statuses = [t.status for t in codes]
    assert statuses == [422] * limit + [429], statuses
    refused = codes[-1].response
    assert refused.json()["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == str(limit) and refused.headers["RateLimit-Remaining"] == "0"
    budget.report()


def test_the_fallback_counts_per_user_not_globally(make_user: MakeUser, set_env: SetEnv) -> None:
    """Another user from another address is not limited by the first one's spent budget."""
    first, second = make_user(), make_user()
    with redis_down("refused", set_env):

        def attempt(who: Person, ip: str) -> int:
            return call(
                "tokens/purchase.py",
                "POST",
                "/api/tokens/purchase",
                json={"tokenAmount": 51, "paymentMethodId": "pm_card_visa"},
                headers={**who.headers, "x-real-ip": ip},
            ).status

        assert [attempt(first, "203.0.113.10") for _ in range(LIMITS["payment"] + 1)][-1] == 429
        assert attempt(second, "203.0.113.11") == 422


def test_redis_comes_back_and_is_used_again(fan: Person, set_env: SetEnv) -> None:
    """After the outage (settings restored, as a new instance would start) sessions come from Redis again."""
    good = get_settings().upstash_redis_rest_url
    with redis_down("refused", set_env):
        assert (
            call("stats/active-sessions.py", "GET", "/api/stats/active-sessions").json()["source"]
            == "database"
        )
    set_env(UPSTASH_REDIS_REST_URL=good)
    stats.reset_local()  # the breaker's 15 s would otherwise keep answering from the database
    assert call("stats/active-sessions.py", "GET", "/api/stats/active-sessions").json()["source"] == "redis"

"""GET /stats/active-sessions: a Redis set of active call ids, the database when Redis is down, reconciled."""

from __future__ import annotations

from lib import calls, redis, stats
from tests.calls.helpers import as_user, client, connect, in_tx, real_now
from tests.conftest import DEAD, MakeUser, SetEnv
from tests.conftest import TestUser as Person


def active_sessions() -> dict:
    r = client("stats/active-sessions.py").get("/api/stats/active-sessions")
    assert r.status_code == 200, r.text
    return r.json()


def test_connecting_and_ending_moves_the_count(
    fan: Person, creator: Person, outsider: Person, make_user: MakeUser
) -> None:
    assert active_sessions()["count"] == 0
    first = connect(fan, creator, real_now())
    connect(outsider, make_user(role="creator"), real_now())
    body = active_sessions()
    assert body["count"] == 2 and body["source"] == "redis" and body["asOf"]
    in_tx(calls.end, as_user(fan), first, real_now())
    in_tx(calls.end, as_user(fan), first, real_now())  # ending twice removes once: a set, not a counter
    assert active_sessions()["count"] == 1


def test_redis_down_answers_from_the_database(fan: Person, creator: Person, set_env: SetEnv) -> None:
    connect(fan, creator, real_now())
    set_env(UPSTASH_REDIS_REST_URL=DEAD)
    body = active_sessions()
    assert body["count"] == 1 and body["source"] == "database"


def test_reconcile_rebuilds_the_set_from_the_database(fan: Person, creator: Person) -> None:
    call_id = connect(fan, creator, real_now())
    client_ = redis.get_redis()
    key = redis.key("stats", "active_calls")
    client_.srem(key, str(call_id))
    client_.sadd(key, "00000000-0000-0000-0000-00000000dead")
    assert in_tx(stats.reconcile_active_sessions) == 1
    assert set(client_.smembers(key)) == {str(call_id)}
    assert active_sessions()["count"] == 1


def test_reconcile_reports_none_when_redis_is_down(set_env: SetEnv, clean: None) -> None:
    set_env(UPSTASH_REDIS_REST_URL=DEAD)
    assert in_tx(stats.reconcile_active_sessions) is None

"""Pusher answering 500 or never answering: tips and calls still succeed within a second, the events wait in the
outbox, and once Pusher (real soketi) is back `realtime.flush_pending` delivers every one of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lib import db, realtime
from localdev import soketi
from tests.conftest import SetEnv
from tests.conftest import TestUser as Person
from tests.faults import servers
from tests.faults.conftest import Timed, call, record
from tests.support.pusher_ws import PusherWsClient

pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)

PRODUCTION_TIMEOUT_S = "1.0"  # Settings' default pusher_timeout_s (the test environment uses 0.5)


def pusher_env(port: int) -> dict[str, str]:
    """Settings pointing lib.realtime at 127.0.0.1:port with soketi's dev app and the production timeout."""
    return {
        "PUSHER_APP_ID": soketi.DEFAULT_APP_ID,
        "PUSHER_KEY": soketi.DEFAULT_KEY,
        "PUSHER_SECRET": soketi.DEFAULT_SECRET,
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(port),
        "PUSHER_USE_TLS": "false",
        "PUSHER_TIMEOUT_S": PRODUCTION_TIMEOUT_S,
    }


@contextmanager
def pusher_failing(mode: str) -> Iterator[servers.RunningServer | servers.HangingServer]:
    """A Pusher that answers 500 to everything, or one that accepts and never answers."""
    if mode == "500":
        with servers.answering(500, {"error": "injected failure"}) as srv:
            yield srv
    else:
        with servers.hanging() as hang:
            yield hang


@pytest.fixture(scope="module")
def pusher_back() -> Iterator[soketi.Soketi]:
    """Real soketi, for the part where Pusher is back."""
    with soketi.running() as h:
        yield h


def outbox() -> list[dict[str, object]]:
    with db.transaction() as conn:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT id, channel, event, attempts, sent_at, last_error FROM realtime_outbox ORDER BY id"
            ).fetchall()
        ]


@pytest.mark.parametrize("mode", ["500", "hanging"])
def test_requests_succeed_while_pusher_fails_and_the_outbox_delivers_once_it_is_back(
    fan: Person, creator: Person, set_env: SetEnv, pusher_back: soketi.Soketi, mode: str
) -> None:
    timings: list[tuple[str, Timed]] = []
    with pusher_failing(mode) as bad:
        set_env(**pusher_env(bad.port))
        t = call(
            "tips/send.py",
            "POST",
            "/api/tips/send",
            json={"toCreatorId": str(creator.id), "amountTokens": 25},
            headers={**fan.headers, "Idempotency-Key": "tip-while-pusher-down"},
        )
        assert t.status == 200 and t.json()["new_balance"] == 75, t.response.text
        timings.append(("tip", t))
        t = call(
            "calls/request.py",
            "POST",
            "/api/calls/request",
            json={"creatorId": str(creator.id)},
            headers=fan.headers,
        )
        assert t.status == 200, t.response.text
        timings.append(("call request", t))
        call_id = t.json()["callId"]
        t = call("calls/[call_id]/accept.py", "POST", f"/api/calls/{call_id}/accept", headers=creator.headers)
        assert t.status == 200, t.response.text
        timings.append(("call accept", t))
        tried = len(bad.seen) if isinstance(bad, servers.RunningServer) else bad.accepted
    for what, timed in timings:
        assert timed.response_s < 1.0, f"{what} kept the client waiting {timed.ms()}"
        # After the response, one flush attempt per request at most: it stops at the first unreachable error.
        assert timed.total_s < float(PRODUCTION_TIMEOUT_S) + 1.0, f"{what} ran {timed.ms()}"
    record(
        f"pusher {mode}: " + ", ".join(f"{w} {t.ms()}" for w, t in timings) + f"; pusher saw {tried} attempts"
    )
    assert 1 <= tried <= len(timings)

    pending = outbox()
    assert pending and all(r["sent_at"] is None and r["attempts"] == 1 and r["last_error"] for r in pending)
    expected = {(str(r["channel"]), str(r["event"])) for r in pending}
    user_channels = {realtime.user_channel(fan.id), realtime.user_channel(creator.id)}
    assert {e for _, e in expected} >= {"tip:received", "balance:update", "call:request", "call:accepted"}

    set_env(**pusher_env(pusher_back.port))
    with PusherWsClient(pusher_back.ws_url) as ws:
        for channel in sorted(user_channels):
            ws.subscribe(channel, realtime.authorize_channel)
        result = realtime.flush_pending()
        assert (result.sent, result.failed) == (len(pending), 0)
        for row in pending:  # every queued event on the subscribed channels arrives, once each
            if row["channel"] in user_channels:
                ws.next_message(str(row["event"]), str(row["channel"]), timeout=5)
        ws.assert_no_event("balance:update", within=0.2)
    after = outbox()
    assert all(r["sent_at"] is not None and r["attempts"] == 2 and r["last_error"] is None for r in after)
    assert realtime.flush_pending() == realtime.FlushResult()  # nothing left, nothing sent twice

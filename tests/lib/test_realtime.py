"""Realtime outbox against real soketi and a real websocket: sent after commit, never lost, never blocking."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lib import config, db, realtime
from lib.errors import BadRequest
from lib.realtime import Event
from localdev import soketi
from tests.support.pusher_ws import PusherWsClient

pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)

PRODUCTION_TIMEOUT_S = 1.0  # Settings' default pusher_timeout_s


@contextmanager
def pusher_settings(
    host: str, port: int, *, secret: str, timeout_s: float = PRODUCTION_TIMEOUT_S
) -> Iterator[None]:
    """Point lib.realtime at a Pusher endpoint for the block (env + config.reset, as a deployment would)."""
    env = {
        "PUSHER_APP_ID": soketi.DEFAULT_APP_ID,
        "PUSHER_KEY": soketi.DEFAULT_KEY,
        "PUSHER_SECRET": secret,
        "PUSHER_HOST": host,
        "PUSHER_PORT": str(port),
        "PUSHER_USE_TLS": "false",
        "PUSHER_TIMEOUT_S": str(timeout_s),
    }
    saved = {k: os.environ.get(k) for k in env}

    def apply(values: dict[str, str | None]) -> None:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        db.close_pool()  # reset() forgets the pool; close it rather than leak its connections
        config.reset()

    apply(dict(env))
    try:
        yield
    finally:
        apply(saved)


@pytest.fixture(scope="module")
def server() -> Iterator[soketi.Soketi]:
    """One soketi for the module, with the dev credentials."""
    with soketi.running() as h:
        yield h


@pytest.fixture
def live(server: soketi.Soketi, clean: None) -> Iterator[soketi.Soketi]:
    """Settings pointed at the running soketi, tables empty."""
    with pusher_settings(server.host, server.port, secret=server.secret):
        yield server


def sign(socket_id: str, channel: str) -> dict[str, str]:
    """What /realtime/pusher/auth returns, minus the access rules."""
    if channel.startswith("presence-"):
        return realtime.authorize_channel(
            socket_id, channel, presence_user={"user_id": "viewer-1", "user_info": {"name": "V"}}
        )
    return realtime.authorize_channel(socket_id, channel)


def outbox() -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM realtime_outbox ORDER BY id").fetchall()]


def balance(n: int) -> realtime.BalanceUpdate:
    return realtime.balance_update(balance=n, delta=-1, reason="call_minute")


@contextmanager
def hanging_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody ever reads or replies
        yield int(s.getsockname()[1])


def test_committed_publish_reaches_a_private_subscriber(live: soketi.Soketi) -> None:
    channel = realtime.user_channel(uuid.uuid4())
    with PusherWsClient(live.ws_url) as ws:
        ws.subscribe(channel, sign)
        latencies = []
        for n in range(5):
            with db.transaction() as conn:
                realtime.publish(conn, channel, Event.BALANCE_UPDATE, balance(n))
                t0 = time.monotonic()  # the flush runs as this block commits
            got = ws.next_message("balance:update", channel)
            assert got.data == {"balance": n, "delta": -1, "reason": "call_minute"}
            latencies.append((got.received_at - t0) * 1000)
    print(
        f"\npublish-to-receive latency (commit + flush + soketi + ws), ms: {[round(x, 1) for x in latencies]}"
    )
    assert max(latencies) < 1000
    rows = outbox()
    assert [r["attempts"] for r in rows] == [1] * 5
    assert all(r["sent_at"] is not None and r["last_error"] is None for r in rows)


def test_rolled_back_transaction_publishes_nothing(live: soketi.Soketi) -> None:
    channel = realtime.user_channel(uuid.uuid4())
    with PusherWsClient(live.ws_url) as ws:
        ws.subscribe(channel, sign)
        with pytest.raises(RuntimeError), db.transaction() as conn:
            realtime.publish(conn, channel, Event.BALANCE_UPDATE, balance(1))
            raise RuntimeError("business rule failed after the publish")
        ws.assert_no_event("balance:update", channel, within=0.5)
        # The same pooled connection in a new transaction must not resend or lose track.
        with db.transaction() as conn:
            realtime.publish(conn, channel, Event.BALANCE_UPDATE, balance(2))
        assert ws.wait_for("balance:update", channel)["balance"] == 2
        ws.assert_no_event("balance:update", channel, within=0.3)
    assert [r["payload"]["balance"] for r in outbox()] == [2]


def test_events_of_one_transaction_arrive_in_order_across_batches(live: soketi.Soketi) -> None:
    channel = realtime.call_channel(f"call_{uuid.uuid4().hex}")
    call_id = uuid.uuid4()
    with PusherWsClient(live.ws_url) as ws:
        ws.subscribe(channel, sign)
        with db.transaction() as conn:
            for minute in range(1, 24):  # 23 events: three Pusher batches
                realtime.publish(
                    conn,
                    channel,
                    Event.CALL_MINUTE_BILLED,
                    realtime.minute_billed(call_id=call_id, minute=minute, fan_balance=100 - minute),
                )
        minutes = [ws.wait_for("call:minute_billed", channel)["minute"] for _ in range(23)]
    assert minutes == list(range(1, 24))
    assert all(r["sent_at"] is not None for r in outbox())


def test_pusher_down_commits_fast_and_the_retry_delivers_exactly_once(clean: None) -> None:
    # soketi on a fixed port, stopped while the transaction commits, then back on the same port.
    port = soketi.free_port()
    channel = realtime.user_channel(uuid.uuid4())
    with pusher_settings("127.0.0.1", port, secret=soketi.DEFAULT_SECRET):
        with soketi.running(port=port):
            pass  # started and stopped: Pusher is now down
        t0 = time.monotonic()
        with db.transaction() as conn:
            realtime.publish(conn, channel, Event.BALANCE_UPDATE, balance(7))
        elapsed = time.monotonic() - t0
        assert elapsed < 1.5
        [row] = outbox()
        assert row["sent_at"] is None and row["attempts"] == 1
        assert "ConnectionError" in row["last_error"]

        with soketi.running(port=port) as back, PusherWsClient(back.ws_url) as ws:
            ws.subscribe(channel, sign)
            assert realtime.flush_pending() == realtime.FlushResult(sent=1, failed=0)
            assert ws.wait_for("balance:update", channel) == {
                "balance": 7,
                "delta": -1,
                "reason": "call_minute",
            }
            assert realtime.flush_pending() == realtime.FlushResult(sent=0, failed=0)
            ws.assert_no_event("balance:update", channel, within=0.5)
    [row] = outbox()
    assert row["sent_at"] is not None and row["attempts"] == 2 and row["last_error"] is None


def test_hanging_pusher_times_out_within_the_budget(server: soketi.Soketi, clean: None) -> None:
    channel = realtime.user_channel(uuid.uuid4())
    with hanging_server() as port, pusher_settings("127.0.0.1", port, secret=server.secret):
        t0 = time.monotonic()
        with db.transaction() as conn:
            realtime.publish(conn, channel, Event.BALANCE_UPDATE, balance(3))
        elapsed = time.monotonic() - t0
        print(
            f"\ncommit with a hanging Pusher took {elapsed * 1000:.0f} ms (timeout {PRODUCTION_TIMEOUT_S}s)"
        )
        assert PRODUCTION_TIMEOUT_S * 0.9 < elapsed < 1.5
        [row] = outbox()
        assert row["sent_at"] is None and "Timeout" in row["last_error"]
    with pusher_settings(server.host, server.port, secret=server.secret), PusherWsClient(server.ws_url) as ws:
        ws.subscribe(channel, sign)
        assert realtime.flush_pending().sent == 1
        assert ws.wait_for("balance:update", channel)["balance"] == 3


def test_wrong_secret_is_a_failure_not_a_delivery(server: soketi.Soketi, clean: None) -> None:
    # soketi answers a bad signature with HTTP 200 and {"error", "code": 401}.
    with pusher_settings(server.host, server.port, secret="wrong-secret"):
        with db.transaction() as conn:
            realtime.publish(conn, realtime.user_channel(uuid.uuid4()), Event.BALANCE_UPDATE, balance(1))
        [row] = outbox()
        assert row["sent_at"] is None
        assert "401" in row["last_error"]


def test_a_row_pusher_refuses_does_not_hold_up_its_batch(live: soketi.Soketi) -> None:
    channel = realtime.user_channel(uuid.uuid4())
    with db.transaction() as conn:
        # Written past publish()'s checks, as an older release or a manual insert might have.
        conn.execute(
            "INSERT INTO realtime_outbox (channel, event, payload) VALUES (%(c)s, 'balance:update', %(p)s::jsonb)",
            {"c": channel, "p": '{"blob": "' + "x" * 20_000 + '"}'},
        )
        for n in range(3):
            conn.execute(
                "INSERT INTO realtime_outbox (channel, event, payload) VALUES (%(c)s, 'balance:update', %(p)s::jsonb)",
                {"c": channel, "p": realtime.encode(balance(n))},
            )
    with PusherWsClient(live.ws_url) as ws:
        ws.subscribe(channel, sign)
        assert realtime.flush_pending() == realtime.FlushResult(sent=3, failed=1)
        assert [ws.wait_for("balance:update", channel)["balance"] for _ in range(3)] == [0, 1, 2]
    bad = outbox()[0]
    assert bad["sent_at"] is None and "413" in bad["last_error"]


def test_flush_pending_skips_rows_another_flush_holds(live: soketi.Soketi) -> None:
    with db.transaction() as conn:  # a raw insert: no after-commit flush
        conn.execute(
            "INSERT INTO realtime_outbox (channel, event, payload) VALUES (%(c)s, 'balance:update', %(p)s::jsonb)",
            {"c": realtime.user_channel(uuid.uuid4()), "p": realtime.encode(balance(1))},
        )
    with db.transaction() as holder:
        holder.execute("SELECT id FROM realtime_outbox FOR UPDATE")
        assert realtime.flush_pending() == realtime.FlushResult(sent=0, failed=0)
    assert realtime.flush_pending() == realtime.FlushResult(sent=1, failed=0)


def test_flush_pending_gives_up_on_old_or_exhausted_rows(live: soketi.Soketi) -> None:
    with db.transaction() as conn:
        for attempts, age_s in ((10, 0), (0, 7200), (9, 10)):
            conn.execute(
                """INSERT INTO realtime_outbox (channel, event, payload, attempts, created_at)
                   VALUES (%(c)s, 'balance:update', %(p)s::jsonb, %(a)s, now() - make_interval(secs => %(age)s))""",
                {
                    "c": realtime.user_channel(uuid.uuid4()),
                    "p": realtime.encode(balance(1)),
                    "a": attempts,
                    "age": age_s,
                },
            )
    assert realtime.flush_pending(max_attempts=10, max_age_s=3600).sent == 1
    with db.transaction() as conn:
        assert realtime.purge(conn, older_than_s=3600) == 1


def stream_tip(message: str | None) -> realtime.StreamTip:
    """A `tip-received` payload with this message."""
    return realtime.stream_tip(
        tip_id=uuid.uuid4(),
        stream_id=uuid.uuid4(),
        channel="stream-x",
        amount_tokens=5,
        sender="Fan",
        from_username="fan",
        message=message,
    )


def test_payload_over_10kb_is_refused_at_publish(live: soketi.Soketi) -> None:
    channel = realtime.stream_channel(f"stream_{uuid.uuid4().hex}")
    base = realtime.encode(stream_tip(""))
    room = realtime.MAX_DATA_BYTES - len(base.encode())
    # Two-byte characters: 10 KB of bytes in ~5,000 characters, which the SDK's own size check would let through.
    too_big = "é" * (room // 2) + "ab"
    fits = "é" * (room // 2) + ("a" if room % 2 else "")
    exact = stream_tip(fits)
    assert len(realtime.encode(exact).encode()) == realtime.MAX_DATA_BYTES
    with PusherWsClient(live.ws_url) as ws:
        ws.subscribe(channel, sign)
        with db.transaction() as conn:
            with pytest.raises(ValueError, match="bytes"):
                realtime.publish(
                    conn,
                    channel,
                    Event.STREAM_TIP,
                    stream_tip(too_big),
                )
            realtime.publish(conn, channel, Event.STREAM_TIP, exact)
        # soketi, configured with Pusher's limit, accepts exactly 10 KB.
        assert ws.wait_for("tip-received", channel)["message"] == fits
    [row] = outbox()
    assert row["sent_at"] is not None


def test_unknown_events_wrong_channels_and_off_contract_payloads_are_refused(clean: None) -> None:
    user = realtime.user_channel(uuid.uuid4())
    with db.transaction() as conn:
        with pytest.raises(ValueError, match="unknown realtime event"):
            realtime.publish(conn, user, "call:requested", {})
        with pytest.raises(ValueError, match="not published on"):
            realtime.publish(
                conn,
                user,
                Event.VIEWER_COUNT,
                realtime.viewer_count(stream_id=uuid.uuid4(), channel="s", count=3),
            )
        with pytest.raises(ValueError, match=r"differ from API\.md"):
            realtime.publish(conn, user, Event.BALANCE_UPDATE, {"balance": 1, "delta": 1, "reson": "typo"})
    with pytest.raises(ValueError, match="invalid Pusher channel"):
        realtime.call_channel("has space")
    assert outbox() == []


def test_payload_builders_use_the_contracts_camelcase_keys() -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    expires = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=30)
    request = realtime.call_request(
        call_id=ids[0],
        channel="c1",
        call_type="video",
        fan_id=ids[1],
        creator_id=ids[2],
        rate=10,
        fan_name="Fan",
        creator_name="Creator",
        expires_at=expires,
    )
    assert list(request) == [
        "callId", "channel", "callType", "fanId", "creatorId", "rate", "fanName", "creatorName", "expiresAt",
    ]  # fmt: skip
    assert request["expiresAt"] == "2030-01-01T00:00:30+00:00" and request["fanId"] == str(ids[1])
    assert set(realtime.call_state(call_id=ids[0], channel="c1", state="ended")) == {
        "callId",
        "channel",
        "state",
    }
    assert set(realtime.tip_received(tip_id=ids[3], amount_tokens=5, from_user_id=ids[1], from_username="f")) == {
        "tipId", "amountTokens", "fromUserId", "fromUsername",
    }  # fmt: skip
    assert set(realtime.insufficient_funds(call_id=ids[0], minute_billed=3, fan_balance=2, tokens_needed=10)) == {
        "callId", "minuteBilled", "fanBalance", "tokensNeeded",
    }  # fmt: skip
    assert set(stream_tip(None)) == {
        "tipId", "streamId", "channel", "amount", "amountTokens", "sender", "fromUsername", "message",
    }  # fmt: skip
    gift = realtime.stream_gift(
        gift_id=ids[3], stream_id=ids[2], channel="s1", gift_type="rocket", name="Rocket", emoji="🚀",
        rarity="epic", quantity=3, unit_cost=250, sender="Fan", from_username="f",
    )  # fmt: skip
    assert (gift["channel"], gift["quantity"], gift["totalValue"], gift["amount"]) == ("s1", 3, 750, 750)
    assert realtime.viewer_count(stream_id=ids[0], channel="s1", count=4) == {
        "streamId": str(ids[0]), "channel": "s1", "count": 4,
    }  # fmt: skip
    assert realtime.stream_ended(stream_id=ids[0], channel="s1", creator_id=ids[1]) == {
        "streamId": str(ids[0]), "channel": "s1", "creatorId": str(ids[1]),
    }  # fmt: skip
    assert realtime.user_channel(ids[0]) == f"private-user-{ids[0]}"
    assert realtime.stream_channel("s1") == "private-stream-s1"


def test_presence_authorization_is_accepted_by_soketi(live: soketi.Soketi) -> None:
    channel = f"presence-room-{uuid.uuid4().hex}"
    with PusherWsClient(live.ws_url) as ws:
        joined = ws.subscribe(channel, sign)
        assert joined["presence"]["ids"] == ["viewer-1"]
        assert joined["presence"]["hash"] == {"viewer-1": {"name": "V"}}


def test_authorize_channel_refuses_malformed_requests() -> None:
    with pytest.raises(BadRequest) as bad_socket:
        realtime.authorize_channel("not-a-socket", "private-user-1")
    assert bad_socket.value.code == "INVALID_SOCKET_ID"
    with pytest.raises(BadRequest) as public:
        realtime.authorize_channel("1.2", "public-room")
    assert public.value.code == "INVALID_CHANNEL"
    with pytest.raises(ValueError, match="presence"):
        realtime.authorize_channel("1.2", "presence-room-s1")
    # A private channel carries no member data: presence_user is ignored there (stream channels are private).
    assert set(realtime.authorize_channel("1.2", "private-stream-s1", presence_user={"user_id": "u"})) == {
        "auth"
    }
    signed = realtime.authorize_channel("1.2", "private-user-1")
    assert set(signed) == {"auth"} and signed["auth"].startswith(config.get_settings().pusher_key + ":")

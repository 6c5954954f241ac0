"""The stale-stream sweep: a host silent for two minutes is ended (by the cron, or by going live again)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lib import db, streams
from lib.streams.models import GoLive
from tests.conftest import TEST_ENV, MakeUser, SetEnv
from tests.streams.helpers import T0, as_user, go_live, in_transaction, outbox, stream_row
from tests.support import functions

TIMEOUT = timedelta(seconds=streams.HOST_TIMEOUT_S)


@pytest.fixture(autouse=True)
def _agora_notifications(set_env: SetEnv) -> None:
    """Agora's notifications configured, none received: hosts here never joined the channel, so only being heard
    keeps a stream (the lease-only rule without notifications is in test_presence)."""
    set_env(AGORA_NCS_SECRET="test-agora-ncs-secret")


def sweep(at: timedelta) -> int:
    """Run the cron's sweep at T0 + `at`; how many streams it ended."""
    ended: int = in_transaction(streams.end_stale_streams, T0 + at)
    return ended


def test_sweep_ends_only_streams_whose_host_went_silent(make_user: MakeUser) -> None:
    quiet, chatty = make_user(role="creator"), make_user(role="creator")
    silent = in_transaction(streams.go_live, as_user(quiet), GoLive(title="Silent"), now=T0).stream
    alive = in_transaction(streams.go_live, as_user(chatty), GoLive(title="Alive"), now=T0).stream
    in_transaction(streams.heartbeat, alive.channel, as_user(chatty), now=T0 + timedelta(seconds=90))

    assert sweep(TIMEOUT) == 0  # exactly two minutes of silence is not yet too long
    assert sweep(TIMEOUT + timedelta(seconds=1)) == 1
    row = stream_row(silent.id)
    assert row["status"] == "ended" and row["end_reason"] == "heartbeat_timeout"
    assert row["ended_at"] == T0  # ended when the host was last heard, not when the cron noticed
    assert stream_row(alive.id)["status"] == "live"
    assert outbox("stream-ended") == [
        {
            "channel": f"private-stream-{silent.channel}",
            "payload": {"streamId": str(silent.id), "channel": silent.channel, "creatorId": str(quiet.id)},
        }
    ]
    assert sweep(TIMEOUT + timedelta(seconds=2)) == 0  # a second run finds nothing more to do
    assert len(outbox("stream-ended")) == 1
    with db.transaction() as conn:
        assert not streams.is_live(conn, quiet.id) and streams.is_live(conn, chatty.id)


def test_host_heartbeats_keep_a_long_stream_on_air(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    stream = in_transaction(streams.go_live, as_user(host), GoLive(title="Marathon"), now=T0).stream
    for minute in range(1, 11):
        at = timedelta(minutes=minute)
        in_transaction(streams.heartbeat, stream.id.hex, as_user(host), now=T0 + at)
        assert sweep(at + timedelta(seconds=5)) == 0
    assert stream_row(stream.id)["status"] == "live"


def test_going_live_again_ends_the_silent_stream_a_crashed_app_left(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    stuck = go_live(host, "Before the crash")["stream"]
    with db.transaction() as conn:  # the app died three minutes ago; the cron has not run since
        conn.execute(
            "UPDATE streams SET started_at = started_at - interval '3 minutes',"
            " last_heartbeat_at = last_heartbeat_at - interval '3 minutes' WHERE id = %(id)s",
            {"id": stuck["id"]},
        )
    fresh = go_live(host, "After the crash")["stream"]
    assert fresh["id"] != stuck["id"]
    assert stream_row(stuck["id"])["end_reason"] == "heartbeat_timeout"
    assert [e["payload"]["streamId"] for e in outbox("stream-ended")] == [stuck["id"]]


def test_cleanup_cron_ends_a_stream_whose_host_went_silent(make_user: MakeUser) -> None:
    host = make_user(role="creator")
    stream = go_live(host, "Forgotten")["stream"]
    with db.transaction() as conn:
        conn.execute(
            "UPDATE streams SET started_at = started_at - interval '5 minutes',"
            " last_heartbeat_at = last_heartbeat_at - interval '5 minutes' WHERE id = %(id)s",
            {"id": stream["id"]},
        )
    cron = functions.client("cron/cleanup.py")
    assert cron.get("/api/cron/cleanup").status_code == 401  # only Vercel Cron, with the secret
    r = cron.get("/api/cron/cleanup", headers={"Authorization": f"Bearer {TEST_ENV['CRON_SECRET']}"})
    assert r.status_code == 200, r.text
    step = r.json()["steps"]["staleStreams"]
    assert (step["ok"], step["result"]) == (True, 1), step
    assert stream_row(stream["id"])["end_reason"] == "heartbeat_timeout"

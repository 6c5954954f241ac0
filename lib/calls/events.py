"""Calls: what a state change announces (Pusher events through the outbox) and sets going after the commit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from lib import agora, db, realtime, stats
from lib.calls.models import Call

BILL_CALL_PATH = "/api/jobs/bill-call"

# The event a call's move into each state sends to both participants' user channels.
STATE_EVENTS = {
    "active": realtime.Event.CALL_ACCEPTED,
    "declined": realtime.Event.CALL_REJECTED,
    "cancelled": realtime.Event.CALL_CANCELLED,
    "missed": realtime.Event.CALL_CANCELLED,  # the ring is over for both sides, as when the caller withdraws
    "ended": realtime.Event.CALL_ENDED,
}


def minute_dedup_id(call_id: UUID, minute: int) -> str:
    """QStash deduplication id (and ledger idempotency key) of one call minute."""
    return f"call:{call_id}:minute:{minute}"


@dataclass
class Announcements:
    """Events and after-commit work collected while changing calls, then written in one go."""

    # (channel, event, payload)
    events: list[tuple[str, str, Mapping[str, Any]]] = field(default_factory=list)
    # (call, minute, delay in seconds, QStash dedup id)
    next_minutes: list[tuple[UUID, int, int, str]] = field(default_factory=list)
    connected: list[UUID] = field(default_factory=list)
    finished: list[UUID] = field(default_factory=list)
    kicks: list[tuple[str, int]] = field(default_factory=list)  # (channel, agora uid)

    def state(self, call: Call) -> None:
        """The call's new state, to both participants (and `call:ended` also to the call channel)."""
        event = STATE_EVENTS[call.state]
        payload = realtime.call_state(
            call_id=call.id, channel=call.channel, state=call.state, end_reason=call.end_reason
        )
        for user_id in (call.fan_id, call.creator_id):
            self.events.append((realtime.user_channel(user_id), event, payload))
        if call.state == "ended":
            self.events.append((realtime.call_channel(call.channel), event, payload))
        if call.state == "active":
            self.connected.append(call.id)
        elif call.state == "ended":
            self.finished.append(call.id)

    def minute_billed(self, call: Call, minute: int, fan_balance: int) -> None:
        """`call:minute_billed` on the call channel."""
        payload = realtime.minute_billed(call_id=call.id, minute=minute, fan_balance=fan_balance)
        self.events.append((realtime.call_channel(call.channel), realtime.Event.CALL_MINUTE_BILLED, payload))

    def insufficient_funds(self, call: Call, fan_balance: int) -> None:
        """`call:insufficient_funds` on the call channel."""
        payload = realtime.insufficient_funds(
            call_id=call.id,
            minute_billed=call.last_billed_minute,
            fan_balance=fan_balance,
            tokens_needed=call.rate_per_minute,
        )
        self.events.append(
            (realtime.call_channel(call.channel), realtime.Event.CALL_INSUFFICIENT_FUNDS, payload)
        )

    def balance(self, user_id: UUID, balance: int, delta: int, reason: str) -> None:
        """`balance:update` on the user's channel."""
        payload = realtime.balance_update(balance=balance, delta=delta, reason=reason)
        self.events.append((realtime.user_channel(user_id), realtime.Event.BALANCE_UPDATE, payload))

    def schedule_minute(
        self, call: Call, minute: int, starts_at: datetime, now: datetime, *, retry: bool = False
    ) -> None:
        """Publish the job that charges `minute` at its start (rounded up: it never arrives early)."""
        delay = max(0, math.ceil((starts_at - now).total_seconds()))
        # A retry needs its own dedup id: QStash drops a second message under the minute's id.
        dedup = minute_dedup_id(call.id, minute) + (":retry" if retry else "")
        self.next_minutes.append((call.id, minute, delay, dedup))

    def kick(self, channel: str, uid: int) -> None:
        """Remove a member from the media channel through Agora's REST API, after the commit."""
        self.kicks.append((channel, uid))

    def commit_with(self, conn: db.Conn) -> None:
        """Write the events to the outbox and register the after-commit work on `conn`'s transaction."""
        # The active-calls set first: a quick Redis op, so a hang-up right after an accept cannot remove the
        # call before the accept's (slower) Pusher and QStash work has added it.
        if self.connected:
            stats.after_commit_connected(conn, self.connected)
        if self.finished:
            stats.after_commit_finished(conn, self.finished)
        publish_many(conn, self.events)
        if self.next_minutes:
            minutes = list(self.next_minutes)
            db.after_commit(conn, lambda: _publish_minutes(minutes))
        for channel, uid in self.kicks:
            agora.kick_after_commit(conn, channel, uid)


def _publish_minutes(minutes: list[tuple[UUID, int, int, str]]) -> None:
    from lib import jobs  # the QStash SDK loads only in functions that schedule minutes (cold starts)

    for call_id, minute, delay, dedup in minutes:
        body = {"callId": str(call_id), "minute": minute}
        if jobs.publish(BILL_CALL_PATH, body, delay_s=delay, dedup_id=dedup) is None:
            # QStash is unreachable: the others would fail too; the cron sweep bills these minutes instead.
            break


def publish_many(conn: db.Conn, events: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Queue events in one statement (a sweep may end thousands of calls); sent after the commit."""
    realtime.publish_many(conn, events)

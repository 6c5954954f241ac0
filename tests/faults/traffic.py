"""A seeded, fault-injecting state machine over the money and call routes, through the real functions.

Random purchases (signed `payment_intent.succeeded` for the packs), refunds, disputes, tips, call requests, accepts,
heartbeats, minute jobs, billing sweeps and hang-ups run against the real database, interleaved with faults:
- the same webhook event twice, two event ids for one intent, a refund before the intent's success (reordered);
- a minute job redelivered under its message id, republished under a new one, or delivered after the sweep
  billed its minute;
- a dropped response (the work committed; the client, Stripe or QStash sends the same request again);
- a crash after the commit (the after-commit work - Pusher fan-out, the next minute's job, stats - never runs;
  the client retries with the same Idempotency-Key);
- a failure at COMMIT (a deferred trigger the test installs raises a connection error: 503, nothing kept; retried).
After every step: each balance and debt equals its ledger sum (`ledger.reconcile` ok), nothing is negative,
tokens are conserved, every balance equals a plain-Python model of purchases, tips and call charges, every call
was charged exactly `rate x minutes` once per minute and never for a minute that started after it ended.

test_fault_state_machine.py runs it, sized and seeded from the environment.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from lib import agora, db, ledger, presence, stats
from localdev.qstash_server import sign as qstash_sign
from tests.conftest import TEST_ENV, _flush_redis_prefix, _truncate_all
from tests.faults.books import (
    PACKS,
    WEBHOOK,
    WEBHOOK_PATH,
    charge_refunded,
    dispute,
    intent_succeeded,
    new_pi,
    signed,
)
from tests.faults.injectors import crash_after_commit, failing_commit
from tests.support.functions import client
from tests.support.tokens import bearer, make_token

CRON = {"Authorization": f"Bearer {TEST_ENV['CRON_SECRET']}"}
BILL_PATH = "/api/jobs/bill-call"
RATES = {"video": 10, "voice": 6}
# What a minute job may answer; anything else (and any 500 or 429 from any route) fails the run.
OK_MINUTE = {"billed", "already_billed", "not_due", "inactive", "ended", "duplicate_delivery"}


# --- the model ------------------------------------------------------------------------------------------------


@dataclass
class Payment:
    """What one PaymentIntent should give its user (API.md's rules, written independently)."""

    user: int
    tokens: int
    cents: int
    succeeded: bool = False
    refunded: int = 0
    disputes: dict[str, tuple[int, bool, str]] = field(default_factory=dict)  # id -> (cents, closed, status)

    def target(self) -> int:
        if not self.succeeded:
            return 0

        def back(c: int) -> int:
            if c <= 0:
                return 0
            return self.tokens if c >= self.cents else min(self.tokens, -(-self.tokens * c // self.cents))

        held = back(self.refunded) + sum(
            back(c)
            for c, closed, status in self.disputes.values()
            if not (closed and status in ("won", "warning_closed"))
        )
        return max(0, self.tokens - held)


@dataclass
class Person:
    """A user of the run: id, auth headers, and its own client address (rate limits count per IP)."""

    id: UUID
    headers: dict[str, str]


@dataclass
class CallRef:
    """A call the machine placed."""

    id: str
    fan: int
    creator: int
    rate: int
    jobs: list[tuple[int, str]] = field(default_factory=list)  # (minute, message id) delivered
    silent: str = "nobody"  # a side whose app stopped heartbeating ("fan", "creator")


class Clock:
    """lib.calls.utcnow for the run: moved by the machine, never by the wall clock."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(hours=3)

    def __call__(self) -> datetime:
        return self.now


CLOCK = Clock()
RUN = {"examples": 0, "steps": 0, "requests": 0, "faults": 0}
OUTCOMES: Counter[str] = Counter()  # "<function> <status>[ <minute status>]": what the run exercised


class FaultyTraffic(RuleBasedStateMachine):
    """Money and call traffic with faults, against the real functions and database."""

    paid = Bundle("paid")
    unpaid = Bundle("unpaid")
    placed = Bundle("placed")

    def __init__(self) -> None:
        super().__init__()
        _truncate_all()
        _flush_redis_prefix()
        agora.breaker.reset()
        stats.reset_local()
        presence.reset_local()
        RUN["examples"] += 1
        CLOCK.now = datetime.now(UTC) - timedelta(hours=3)
        self.people: list[Person] = []
        # Users 0 and 1 are fans, 2 and 3 creators; opening balances are written as ledger adjustments.
        self.seed_tokens = [150, 40, 20, 0]
        with db.transaction() as conn:
            for n in range(4):
                uid, creator = uuid.uuid4(), n >= 2
                conn.execute(
                    """INSERT INTO users (id, email, username, role, is_creator, video_price, voice_price)
                       VALUES (%(id)s, %(e)s, %(u)s, %(r)s, %(c)s, %(v)s, %(o)s)""",
                    {
                        "id": uid,
                        "e": f"u{n}@example.test",
                        "u": f"u{n}_{uid.hex[:6]}",
                        "r": "creator" if creator else "fan",
                        "c": creator,
                        "v": RATES["video"] if creator else None,
                        "o": RATES["voice"] if creator else None,
                    },
                )
                if self.seed_tokens[n]:
                    conn.execute(
                        "UPDATE users SET token_balance = %(b)s WHERE id = %(id)s",
                        {"b": self.seed_tokens[n], "id": uid},
                    )
                    conn.execute(
                        """INSERT INTO token_transactions (user_id, type, amount, balance_after, reference_type,
                                                           reference_id, idempotency_key)
                           VALUES (%(id)s, 'adjustment', %(b)s, %(b)s, 'test', 'seed', %(k)s)""",
                        {"id": uid, "b": self.seed_tokens[n], "k": f"seed:{uid}"},
                    )
                # An address of its own (from the id): rate limits never carry over from one example to the next.
                ip = f"10.{uid.bytes[0]}.{uid.bytes[1]}.{uid.bytes[2]}"
                headers = {**bearer(make_token(uid, email=f"u{n}@example.test")), "x-real-ip": ip}
                self.people.append(Person(uid, headers))
        self.payments: dict[str, Payment] = {}
        self.moved = [0, 0, 0, 0]  # tips received (creator cut) minus tips sent
        self.tip_fees = 0
        self.tips = 0
        self.calls: dict[str, CallRef] = {}

    # --- plumbing ---------------------------------------------------------------------------------------------

    def post(self, relpath: str, path: str, **kwargs: Any) -> Any:
        RUN["requests"] += 1
        r = client(relpath).post(path, **kwargs)
        assert r.status_code not in (429, 500), f"{path}: {r.status_code} {r.text}"
        if r.status_code != 200:
            detail = r.json().get("code", "")
        else:
            detail = r.json().get("status", "") if relpath == "jobs/bill-call.py" else ""
        name = relpath.removesuffix(".py").replace("[call_id]/", "")
        OUTCOMES[f"{name} {r.status_code} {detail}".strip()] += 1
        return r

    def webhook(self, payload: bytes) -> Any:
        return self.post(WEBHOOK, WEBHOOK_PATH, content=payload, headers=signed(payload))

    def deliver(self, payload: bytes, fault: str) -> None:
        """A webhook delivery under `fault`; Stripe retries until it gets a 2xx."""
        if fault == "fail_at_commit":
            RUN["faults"] += 1
            with failing_commit():
                r = self.webhook(payload)
            assert r.status_code == 503 and r.json()["code"] == "DB_UNAVAILABLE", r.text
        elif fault in ("dropped", "crash_after_commit"):
            RUN["faults"] += 1
            with crash_after_commit() if fault == "crash_after_commit" else nullcontext():
                assert self.webhook(payload).status_code == 200  # committed; Stripe never saw the answer
        r = self.webhook(payload)
        assert r.status_code == 200, r.text
        if fault in ("none", "fail_at_commit"):
            assert r.json()["duplicate"] is False, r.text
        if fault in ("dropped", "crash_after_commit", "same_event_twice"):
            again = r if fault != "same_event_twice" else self.webhook(payload)
            assert again.status_code == 200 and again.json()["duplicate"] is True, again.text

    def net(self, n: int, minutes: dict[str, int] | None = None) -> int:
        """What user n should own: seed + purchases' targets + tips + calls (the books may owe it as debt)."""
        billed = self.billed_minutes() if minutes is None else minutes
        owned = self.seed_tokens[n] + self.moved[n]
        owned += sum(p.target() for p in self.payments.values() if p.user == n)
        for c in self.calls.values():
            if c.fan == n:
                owned -= c.rate * billed[c.id]
            if c.creator == n:
                owned += ledger.split_fee(c.rate)[0] * billed[c.id]
        return owned

    def billed_minutes(self) -> dict[str, int]:
        """Each call's last billed minute, as stored (checked against the ledger by an invariant)."""
        with db.transaction() as conn:
            rows = conn.execute("SELECT id, last_billed_minute FROM call_sessions").fetchall()
        return {str(r["id"]): int(r["last_billed_minute"]) for r in rows}

    def db_call(self, call_id: str) -> dict[str, Any]:
        with db.transaction() as conn:
            row = conn.execute("SELECT * FROM call_sessions WHERE id = %(id)s", {"id": call_id}).fetchone()
        assert row is not None
        return dict(row)

    def unspent(self, pi: str) -> bool:
        """True while none of this purchase's tokens were spent (a lot as large as what the payment gives).

        Once a purchase's tokens were spent, its refund or dispute falls on the creators who earned them (the
        payouts rule, modelled in tests/payouts); this machine's per-user model keeps the buyer-only case.
        """
        with db.transaction() as conn:
            row = conn.execute(
                """SELECT l.remaining, p.tokens_applied FROM payments p
                   LEFT JOIN purchase_lots l ON l.payment_id = p.id
                   WHERE p.stripe_payment_intent_id = %(pi)s""",
                {"pi": pi},
            ).fetchone()
        return row is None or row["remaining"] is None or int(row["remaining"]) >= int(row["tokens_applied"])

    def spendable(self, n: int) -> int:
        return max(self.net(n), 0)

    # --- purchases, refunds, disputes -------------------------------------------------------------------------

    @rule(
        target=paid,
        user=st.integers(0, 3),
        pack=st.sampled_from(PACKS),
        fault=st.sampled_from(
            ["none", "same_event_twice", "second_event_id", "dropped", "crash_after_commit", "fail_at_commit"]
        ),
    )
    def purchase(self, user: int, pack: tuple[int, int], fault: str) -> str:
        pi = new_pi()
        self.payments[pi] = Payment(user, *pack, succeeded=True)
        self.deliver(
            intent_succeeded(pi, self.people[user].id, *pack), fault if fault != "second_event_id" else "none"
        )
        if fault == "second_event_id":
            RUN["faults"] += 1
            self.deliver(intent_succeeded(pi, self.people[user].id, *pack), "none")
        return pi

    @rule(target=unpaid, user=st.integers(0, 1), pack=st.sampled_from(PACKS), share=st.integers(1, 100))
    def refund_arrives_before_success(self, user: int, pack: tuple[int, int], share: int) -> str:
        """Reordered delivery: an intent's refund arrives before its success event (kept until it comes)."""
        pi = new_pi()
        p = self.payments[pi] = Payment(user, *pack)
        p.refunded = max(p.cents * share // 100, 1)
        RUN["faults"] += 1
        self.deliver(charge_refunded(pi, p.refunded, p.cents), "none")
        return pi

    @rule(target=paid, pi=consumes(unpaid), fault=st.sampled_from(["none", "dropped", "fail_at_commit"]))
    def late_success(self, pi: str, fault: str) -> str:
        p = self.payments[pi]
        p.succeeded = True
        self.deliver(intent_succeeded(pi, self.people[p.user].id, p.tokens, p.cents), fault)
        return pi

    @rule(
        pi=paid,
        share=st.integers(1, 100),
        fault=st.sampled_from(["none", "same_event_twice", "dropped", "fail_at_commit"]),
    )
    def refund(self, pi: str, share: int, fault: str) -> None:
        if not self.unspent(pi):
            return
        p = self.payments[pi]
        p.refunded = max(p.refunded, max(p.cents * share // 100, 1))
        self.deliver(charge_refunded(pi, p.refunded, p.cents), fault)

    @rule(
        pi=paid,
        action=st.sampled_from(["open", "open", "won", "lost"]),
        share=st.integers(1, 100),
        fault=st.sampled_from(["none", "dropped", "same_event_twice"]),
    )
    def dispute_event(self, pi: str, action: str, share: int, fault: str) -> None:
        """Open a dispute on a paid intent, or close its oldest open one (won gives the tokens back)."""
        p = self.payments[pi]
        if action == "open" and not self.unspent(pi):
            return
        if action == "open":
            dp = f"dp_{len(p.disputes)}_{pi[3:11]}"
            cents = max(p.cents * share // 100, 1)
            p.disputes[dp] = (cents, False, "needs_response")
            self.deliver(dispute("created", dp, pi, cents), fault)
            return
        open_ones = [d for d, (_, closed, _) in p.disputes.items() if not closed]
        if open_ones:
            cents = p.disputes[open_ones[0]][0]
            p.disputes[open_ones[0]] = (cents, True, action)
            self.deliver(dispute("closed", open_ones[0], pi, cents, status=action), fault)

    # --- tips -------------------------------------------------------------------------------------------------

    @rule(
        src=st.integers(0, 3),
        dst=st.integers(2, 3),
        amount=st.integers(1, 80),
        fault=st.sampled_from(
            ["none", "dropped", "crash_after_commit", "fail_at_commit", "key_reused_for_another_tip"]
        ),
    )
    def tip(self, src: int, dst: int, amount: int, fault: str) -> None:
        if src == dst:
            return
        ok = self.spendable(src) >= amount
        key = str(uuid.uuid4())
        body = {"toCreatorId": str(self.people[dst].id), "amountTokens": amount}
        headers = {**self.people[src].headers, "Idempotency-Key": key}

        def send(payload: dict[str, Any] = body) -> Any:
            return self.post("tips/send.py", "/api/tips/send", json=payload, headers=headers)

        first = None
        if fault == "fail_at_commit":
            RUN["faults"] += 1
            with failing_commit():
                failed = send()
            assert failed.status_code == (503 if ok else 402), failed.text
        elif fault in ("dropped", "crash_after_commit"):
            RUN["faults"] += 1
            with crash_after_commit() if fault == "crash_after_commit" else nullcontext():
                first = send()  # committed (or refused); the answer never reached the client
        r = send()
        if not ok:
            assert r.status_code == 402 and r.json()["code"] == "INSUFFICIENT_TOKENS", r.text
            assert r.json()["current_balance"] == self.spendable(src)
            return
        assert r.status_code == 200, r.text
        if first is not None:
            assert first.status_code == 200 and r.json() == first.json(), (first.text, r.text)
            assert r.headers.get("Idempotency-Replayed") == "true"
        if fault == "crash_after_commit":
            # The Pusher fan-out never ran: the event waits in the outbox for the cron's flush_pending.
            with db.transaction() as conn:
                unsent = conn.execute(
                    """SELECT count(*) AS n FROM realtime_outbox
                       WHERE event = 'tip:received' AND payload->>'tipId' = %(t)s AND sent_at IS NULL""",
                    {"t": r.json()["tipId"]},
                ).fetchone()
            assert unsent == {"n": 1}
        if fault == "key_reused_for_another_tip":
            RUN["faults"] += 1
            reused = send({**body, "amountTokens": amount + 1})
            assert reused.status_code == 422, reused.text
            assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        cut, fee = ledger.split_fee(amount)
        assert (r.json()["creatorCut"], r.json()["platformFee"]) == (cut, fee)
        self.moved[src] -= amount
        self.moved[dst] += cut
        self.tip_fees += fee
        self.tips += 1
        assert r.json()["new_balance"] == self.spendable(src)

    # --- calls ------------------------------------------------------------------------------------------------

    @rule(
        target=placed,
        fan=st.integers(0, 1),
        creator=st.integers(2, 3),
        call_type=st.sampled_from(["video", "voice"]),
        fault=st.sampled_from(["none", "dropped", "crash_after_commit"]),
        answer=st.sampled_from(["later", "none", "none", "dropped", "crash_after_commit", "fail_at_commit"]),
    )
    def request_call(self, fan: int, creator: int, call_type: str, fault: str, answer: str) -> Any:
        """The fan calls; unless `answer` is "later" the creator picks up at once (under that fault)."""
        with db.transaction() as conn:
            busy = conn.execute(
                """SELECT 1 FROM call_sessions WHERE creator_id = %(c)s
                   AND (state = 'active' OR (state = 'ringing' AND ring_expires_at > %(now)s))""",
                {"c": self.people[creator].id, "now": CLOCK.now},
            ).fetchone()
            fan_busy = conn.execute(  # a user is in one ringing or active call at a time, on either side
                """SELECT 1 FROM call_sessions WHERE fan_id = %(f)s
                   AND (state = 'active' OR (state = 'ringing' AND ring_expires_at > %(now)s))""",
                {"f": self.people[fan].id, "now": CLOCK.now},
            ).fetchone()
        rate = RATES[call_type]
        headers = {**self.people[fan].headers, "Idempotency-Key": str(uuid.uuid4())}
        body = {"creatorId": str(self.people[creator].id), "callType": call_type}
        first = None
        if fault != "none":
            RUN["faults"] += 1
            with crash_after_commit() if fault == "crash_after_commit" else nullcontext():
                first = self.post("calls/request.py", "/api/calls/request", json=body, headers=headers)
        r = self.post("calls/request.py", "/api/calls/request", json=body, headers=headers)
        if self.spendable(fan) < rate:
            assert r.status_code == 402 and r.json()["code"] == "INSUFFICIENT_TOKENS", r.text
            return multiple()
        if busy:
            assert r.status_code == 409 and r.json()["code"] == "CREATOR_BUSY", r.text
            return multiple()
        if fan_busy:
            assert r.status_code == 409 and r.json()["code"] == "FAN_BUSY", r.text
            return multiple()
        assert r.status_code == 200 and r.json()["state"] == "ringing", r.text
        if first is not None:
            assert r.json() == first.json() and r.headers.get("Idempotency-Replayed") == "true"
        ref = CallRef(str(r.json()["callId"]), fan, creator, rate)
        self.calls[ref.id] = ref
        if answer != "later":
            self.answer(ref, answer, 0)
        return ref

    @precondition(lambda self: bool(self.calls_in("ringing")))
    @rule(
        pick=st.integers(0, 1),
        fault=st.sampled_from(["none", "dropped", "crash_after_commit", "fail_at_commit"]),
        wait=st.sampled_from([0, 0, 0, 10, 30, 50]),  # a ring lasts 45 s
    )
    def accept(self, pick: int, fault: str, wait: int) -> None:
        """The creator picks up a ringing call, maybe too late."""
        ringing = self.calls_in("ringing")
        self.answer(ringing[pick % len(ringing)], fault, wait)

    @rule(
        target=placed,
        fan=st.integers(0, 1),
        creator=st.integers(2, 3),
        answer=st.sampled_from(["none", "none", "dropped", "crash_after_commit", "fail_at_commit"]),
        minutes=st.lists(
            st.tuples(
                st.integers(0, 10),
                st.sampled_from(["none", "none", "redelivered", "dropped", "fail_at_commit", "lost"]),
            ),
            min_size=1,
            max_size=4,
        ),
        ending=st.sampled_from(["fan hangs up", "creator hangs up", "fan drops out", "goes on"]),
    )
    def call_story(
        self, fan: int, creator: int, answer: str, minutes: list[tuple[int, str]], ending: str
    ) -> Any:
        """A whole call: placed, answered (under a fault), a few minutes billed (each job under a fault), ended."""
        placed = self.request_call(fan, creator, "video", "none", answer)
        if not isinstance(placed, CallRef):
            return placed
        for late, fault in minutes:
            if self.db_call(placed.id)["state"] == "active":
                self.next_minute(placed, "nobody", late, fault)
        if ending == "goes on":
            return placed
        if ending == "fan drops out":
            placed.silent = "fan"
            self.advance(60)  # the creator's heartbeats find the fan gone
            return placed
        who = self.people[placed.fan if ending == "fan hangs up" else placed.creator]
        r = self.post("calls/[call_id]/end.py", f"/api/calls/{placed.id}/end", headers=who.headers)
        assert r.status_code == 200, r.text
        return placed

    def answer(self, ref: CallRef, fault: str, wait: int) -> None:
        """The creator accepts `wait` seconds on: 200 while ringing and the fan can pay, else 402 or 409."""
        self.advance(wait)
        row = self.db_call(ref.id)
        creator = self.people[ref.creator]
        path = f"/api/calls/{ref.id}/accept"
        ringing = row["state"] == "ringing" and CLOCK.now < row["ring_expires_at"]
        can_pay = self.spendable(ref.fan) >= ref.rate

        def send() -> Any:
            return self.post("calls/[call_id]/accept.py", path, headers=creator.headers)

        if fault == "fail_at_commit":
            RUN["faults"] += 1
            with failing_commit():
                failed = send()
            if ringing and can_pay:
                assert failed.status_code == 503, failed.text
        elif fault in ("dropped", "crash_after_commit"):
            RUN["faults"] += 1
            with crash_after_commit() if fault == "crash_after_commit" else nullcontext():
                dropped = send()
            if ringing and can_pay:
                assert dropped.status_code == 200, dropped.text
                ringing = False  # accept is not keyed: the retry finds the call active
        r = send()
        if ringing:
            assert r.status_code == (200 if can_pay else 402), r.text
        else:
            assert r.status_code == 409, r.text

    def advance(self, seconds: float) -> None:
        """Move the clock in steps of at most 30 s; at each, both apps of every active call heartbeat (unless
        silent), as the real apps do every 10-15 s."""
        target = CLOCK.now + timedelta(seconds=seconds)
        while CLOCK.now < target:
            CLOCK.now = min(target, CLOCK.now + timedelta(seconds=30))
            for ref in self.active_calls():
                for n, side in ((ref.fan, "fan"), (ref.creator, "creator")):
                    if side != ref.silent:
                        path = f"/api/calls/{ref.id}/heartbeat"
                        r = self.post("calls/[call_id]/heartbeat.py", path, headers=self.people[n].headers)
                        assert r.status_code == 200, r.text

    def calls_in(self, state: str) -> list[CallRef]:
        """The machine's calls in `state` right now, in the order they were placed."""
        with db.transaction() as conn:
            rows = conn.execute("SELECT id FROM call_sessions WHERE state = %(s)s", {"s": state}).fetchall()
        found = {str(r["id"]) for r in rows}
        return [c for c in self.calls.values() if c.id in found]

    def active_calls(self) -> list[CallRef]:
        """Calls in progress."""
        return self.calls_in("active")

    @precondition(lambda self: bool(self.active_calls()))
    @rule(
        pick=st.integers(0, 1),
        silent=st.sampled_from(["nobody", "nobody", "nobody", "fan", "creator"]),
        late=st.integers(0, 10),
        fault=st.sampled_from(["none", "none", "redelivered", "dropped", "fail_at_commit", "lost"]),
    )
    def minute_passes(self, pick: int, silent: str, late: int, fault: str) -> None:
        """Both apps heartbeat (unless one went silent) until an active call's next minute starts; then QStash
        delivers its job (`late` seconds late, under `fault`; "lost": never delivered, the sweep must bill it)."""
        active = self.active_calls()
        self.next_minute(active[pick % len(active)], silent, late, fault)

    def next_minute(self, ref: CallRef, silent: str, late: int, fault: str) -> None:
        """Advance to the call's next minute (heartbeating), then deliver that minute's job under `fault`."""
        if silent != "nobody":
            ref.silent = silent
        row = self.db_call(ref.id)
        due = row["connected_at"] + timedelta(seconds=60 * row["last_billed_minute"] + late)
        self.advance(max(0.0, (due - CLOCK.now).total_seconds()))
        if fault == "lost":
            RUN["faults"] += 1
            return
        self.bill(ref, row["last_billed_minute"] + 1, fault)

    def job(self, ref: CallRef, minute: int, message_id: str | None = None) -> Any:
        body = json.dumps({"callId": ref.id, "minute": minute}, separators=(",", ":")).encode()
        msg = message_id or f"msg_{uuid.uuid4().hex}"
        headers = {
            "Content-Type": "application/json",
            "Upstash-Signature": qstash_sign(
                TEST_ENV["QSTASH_CURRENT_SIGNING_KEY"], url=TEST_ENV["PUBLIC_BASE_URL"] + BILL_PATH, body=body
            ),
            "Upstash-Message-Id": msg,
            "Upstash-Retried": "0",
        }
        ref.jobs.append((minute, msg))
        return self.post("jobs/bill-call.py", BILL_PATH, content=body, headers=headers)

    @rule(
        ref=placed,
        ahead=st.integers(-1, 1),
        wait=st.sampled_from([0, 5, 20, 40, 60]),
        fault=st.sampled_from(
            ["none", "redelivered", "republished", "dropped", "fail_at_commit", "old_message"]
        ),
    )
    def any_minute_job(self, ref: CallRef, ahead: int, wait: int, fault: str) -> None:
        """A job for the minute before, at, or after the next one, at any moment (early, late, stale), or a
        delivery QStash already made, again."""
        self.advance(wait)
        if fault == "old_message":
            if ref.jobs:
                RUN["faults"] += 1
                minute, msg = ref.jobs[0]
                r = self.job(ref, minute, msg)
                assert r.status_code == 200 and r.json()["status"] == "duplicate_delivery", r.text
                return
            fault = "none"  # nothing delivered yet to deliver again
        self.bill(ref, max(1, self.db_call(ref.id)["last_billed_minute"] + 1 + ahead), fault)

    def bill(self, ref: CallRef, minute: int, fault: str) -> None:
        """Deliver the job for `minute` under `fault`; QStash retries until it gets a 2xx."""
        msg = f"msg_{uuid.uuid4().hex}"
        if fault == "fail_at_commit":
            RUN["faults"] += 1
            with failing_commit():
                failed = self.job(ref, minute, msg)
            # Every first delivery records its message id: the failed commit loses that too, so QStash retries.
            assert failed.status_code == 503, failed.text
        elif fault == "dropped":
            RUN["faults"] += 1
            assert self.job(ref, minute, msg).status_code == 200
        r = self.job(ref, minute, msg)
        assert r.status_code == 200 and r.json()["status"] in OK_MINUTE, r.text
        if fault == "dropped":
            assert r.json()["status"] == "duplicate_delivery", r.text
        if fault == "redelivered":
            RUN["faults"] += 1
            again = self.job(ref, minute, msg)
            assert again.json()["status"] == "duplicate_delivery", again.text
        elif fault == "republished":
            RUN["faults"] += 1
            again = self.job(ref, minute)
            assert again.json()["status"] in {"already_billed", "inactive", "not_due"}, again.text

    @rule(wait=st.integers(0, 120), then_jobs=st.booleans())
    def billing_sweep(self, wait: int, then_jobs: bool) -> None:
        self.advance(wait)
        before = {i: self.db_call(i)["last_billed_minute"] for i in self.calls}
        r = self.post("cron/bill-active-calls.py", "/api/cron/bill-active-calls", headers=CRON)
        assert r.status_code == 200, r.text
        if not then_jobs:
            return
        for ref in self.calls.values():  # the job for a minute the sweep just billed arrives late
            billed = self.db_call(ref.id)["last_billed_minute"]
            if billed > before[ref.id]:
                RUN["faults"] += 1
                late = self.job(ref, billed)
                assert late.json()["status"] in {"already_billed", "inactive"}, late.text

    @rule(
        ref=placed,
        who=st.sampled_from(["fan", "creator"]),
        wait=st.integers(0, 90),
        fault=st.sampled_from(["none", "dropped", "fail_at_commit"]),
    )
    def end(self, ref: CallRef, who: str, wait: int, fault: str) -> None:
        self.advance(wait)
        person = self.people[ref.fan if who == "fan" else ref.creator]
        path = f"/api/calls/{ref.id}/end"
        first = None
        if fault == "fail_at_commit":
            RUN["faults"] += 1
            live = self.db_call(ref.id)["state"] in ("ringing", "active")
            with failing_commit():
                failed = self.post("calls/[call_id]/end.py", path, headers=person.headers)
            # A live call is written to as it ends (so the commit fails); an ended one is only read.
            assert failed.status_code == (503 if live else 200), failed.text
        elif fault == "dropped":
            RUN["faults"] += 1
            first = self.post("calls/[call_id]/end.py", path, headers=person.headers)
        r = self.post("calls/[call_id]/end.py", path, headers=person.headers)
        assert r.status_code == 200 and r.json()["state"] in ("ended", "declined", "cancelled", "missed"), (
            r.text
        )
        if first is not None:
            assert first.status_code == 200 and first.json() == r.json(), (first.text, r.text)

    @rule(seconds=st.integers(1, 90), apps=st.sampled_from(["heartbeating", "heartbeating", "all silent"]))
    def time_passes(self, seconds: int, apps: str) -> None:
        """Time passes while the apps heartbeat, or while every app is cut off (calls time out)."""
        if apps == "all silent":
            CLOCK.now += timedelta(seconds=seconds)
        else:
            self.advance(seconds)

    def teardown(self) -> None:
        """Note how the run's calls ended (so the figures show which paths the run took)."""
        with db.transaction() as conn:
            for r in conn.execute("SELECT state, end_reason FROM call_sessions").fetchall():
                OUTCOMES[f"call {r['state']}{' ' + r['end_reason'] if r['end_reason'] else ''}"] += 1

    # --- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def books_balance_and_match_the_model(self) -> None:
        RUN["steps"] += 1
        with db.transaction() as conn:
            report = ledger.reconcile(conn)
            rows = {
                r["id"]: (int(r["token_balance"]), int(r["token_debt"]))
                for r in conn.execute("SELECT id, token_balance, token_debt FROM users").fetchall()
            }
            tips = conn.execute("SELECT count(*) AS n FROM tips").fetchone()
        assert report.ok, report
        assert all(b >= 0 and d >= 0 for b, d in rows.values()), rows
        minutes = self.billed_minutes()
        for n, person in enumerate(self.people):
            net = self.net(n, minutes)
            assert rows[person.id] == (max(net, 0), max(-net, 0)), (n, rows[person.id], net)
        call_fees = sum(ledger.split_fee(c.rate)[1] * minutes[c.id] for c in self.calls.values())
        assert rows.get(ledger.PLATFORM_USER_ID, (0, 0)) == (self.tip_fees + call_fees, 0)
        assert tips == {"n": self.tips}

    @invariant()
    def every_payment_gives_what_the_model_says(self) -> None:
        with db.transaction() as conn:
            applied = {
                r["stripe_payment_intent_id"]: int(r["tokens_applied"])
                for r in conn.execute(
                    "SELECT stripe_payment_intent_id, tokens_applied FROM payments"
                ).fetchall()
            }
        for pi, p in self.payments.items():
            assert applied.get(pi, 0) == p.target(), (pi, p, applied.get(pi))

    @invariant()
    def every_call_minute_is_charged_once_and_only_while_the_call_ran(self) -> None:
        with db.transaction() as conn:
            charged = {
                r["reference_id"]: (list(r["keys"]), int(r["paid"]))
                for r in conn.execute(
                    """SELECT reference_id, array_agg(idempotency_key ORDER BY seq) AS keys, -sum(amount) AS paid
                       FROM token_transactions WHERE reference_type = 'call' AND amount < 0 GROUP BY reference_id"""
                ).fetchall()
            }
            live = conn.execute(
                """SELECT creator_id, count(*) AS n FROM call_sessions WHERE state IN ('ringing', 'active')
                   GROUP BY creator_id HAVING count(*) > 1"""
            ).fetchall()
            stored = {str(r["id"]): dict(r) for r in conn.execute("SELECT * FROM call_sessions").fetchall()}
        assert not live, live
        for ref in self.calls.values():
            row = stored[ref.id]
            n = int(row["last_billed_minute"])
            keys, paid = charged.get(ref.id, ([], 0))
            assert keys == [f"call:{ref.id}:minute:{m}" for m in range(1, n + 1)], (ref, keys)
            assert paid == int(row["total_cost"]) == ref.rate * n, (ref, paid, row["total_cost"])
            if n:
                last_start = row["connected_at"] + timedelta(seconds=60 * (n - 1))
                assert last_start <= (row["ended_at"] or CLOCK.now), (
                    "charged a minute after the end",
                    ref,
                    row,
                )

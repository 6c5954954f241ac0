"""Sending tips and gifts: one path through the ledger for both, safe under client retries."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from lib import gifts, ledger, realtime, streams, users
from lib.db import Conn
from lib.errors import BadRequest, Conflict, NotFound, Unprocessable
from lib.gifts import Gift
from lib.streams import queries as stream_queries
from lib.streams.models import Stream
from lib.tips.models import MAX_TIP, GiftRequest, GiftResult, TipOut, TipRequest, TipResult
from lib.users import User

# Without an Idempotency-Key, a request repeating one from the same sender (same recipient, amount, gift, stream
# context and message) this soon is the client retrying: it is answered with the first tip, not sent twice. The
# frontend retries 1 s and 2 s after a failure, and 1 s after its 10 s timeout, so 20 s covers every retry.
DUPLICATE_WINDOW_S = 20


@dataclass(frozen=True)
class _Order:
    """One tip to send: what it moves, where it counts, and what identifies the request."""

    creator: User
    amount: int
    message: str | None
    stream: Stream | None
    gift: Gift | None
    quantity: int | None
    digest: str


def send_tip(conn: Conn, sender: User, req: TipRequest, *, idempotency_key: str | None = None) -> TipResult:
    """A tip; in a live stream of the creator's (by id or channel) it counts toward that stream."""
    creator = _recipient(conn, sender, req.to_creator_id)
    ref = req.context.ref if req.context else None
    channel = req.context.channel if req.context else None
    stream = _stream_for(conn, ref, channel, creator.id)
    digest = _digest("tip", creator.id, req.amount_tokens, None, None, ref, channel, req.message)
    order = _Order(creator, req.amount_tokens, req.message, stream, None, None, digest)
    out = _send(conn, sender, order, idempotency_key)
    return TipResult(**out.model_dump(), data=out)


def send_gift(
    conn: Conn, sender: User, req: GiftRequest, *, idempotency_key: str | None = None
) -> GiftResult:
    """A gift on a stream: a tip of the catalog price x quantity (the body's own prices are never read)."""
    gift = gifts.gift(req.giftType)
    total = gift.cost * req.quantity
    if total > MAX_TIP:
        raise Unprocessable(
            f"{req.quantity} x {gift.name} is {total} tokens; one request may send at most {MAX_TIP}",
            code="VALIDATION_ERROR",
            errors=[{"field": "quantity", "message": "total over the limit", "type": "value_error"}],
        )
    live = _live(conn, req.channel)
    creator_id = req.creatorId or (live.creator_id if live else None)
    if creator_id is None:
        raise BadRequest("No live stream on this channel", code="STREAM_NOT_LIVE")
    creator = _recipient(conn, sender, creator_id)
    stream = live if live is not None and live.creator_id == creator.id else None
    digest = _digest("gift", creator.id, total, gift.id, req.quantity, req.channel, None, req.message)
    out = _send(
        conn, sender, _Order(creator, total, req.message, stream, gift, req.quantity, digest), idempotency_key
    )
    return GiftResult(
        **out.model_dump(),
        giftId=out.tipId,
        giftType=gift.id,
        quantity=req.quantity,
        unitCost=gift.cost,
        totalCost=total,
        gift=gift,
    )


def _recipient(conn: Conn, sender: User, creator_id: uuid.UUID) -> User:
    if creator_id == sender.id:
        raise BadRequest("You cannot tip yourself", code="SELF_TIP")
    creator = users.get(conn, creator_id)
    if creator is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    if not creator.is_creator:
        raise BadRequest("Tips can only be sent to creators", code="NOT_A_CREATOR")
    return creator


def _live(conn: Conn, ref: str | None) -> Stream | None:
    """The live stream `ref` (an id or an Agora channel) names, its row locked until the commit.

    The lock orders the tip against the host ending the stream: either the tip counts in `tips_tokens` before
    the end-of-stream summary is read, or it waits, sees the stream ended and counts in no stream.
    """
    if ref is None:
        return None
    stream = stream_queries.find(conn, ref, lock=True)
    return stream if stream is not None and stream.is_live else None


def _stream_for(conn: Conn, ref: str | None, channel: str | None, creator_id: uuid.UUID) -> Stream | None:
    """The creator's live stream the context names; None (a plain tip) when it names none, or another one."""
    stream = _live(conn, ref)
    if stream is None or stream.creator_id != creator_id:
        return None
    if channel is not None and channel not in (stream.channel, str(stream.id)):
        return None
    return stream


def _digest(
    kind: str,
    creator_id: uuid.UUID,
    amount: int,
    gift_type: str | None,
    quantity: int | None,
    ref: str | None,
    channel: str | None,
    message: str | None,
) -> str:
    """What identifies a request for the duplicate check (the sender is matched by column)."""
    parts = [kind, str(creator_id), amount, gift_type, quantity, ref, channel, message]
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _send(conn: Conn, sender: User, order: _Order, idempotency_key: str | None) -> TipOut:
    """Move the tokens, record the tip, count it in its stream and queue its events (or replay a duplicate)."""
    if idempotency_key is None:
        # Lock both users (as the transfer will, fee account included) before looking, so two copies of one
        # request sent at once are serialised and the second sees the first.
        ledger.lock_users(conn, [sender.id, order.creator.id], platform=ledger.split_fee(order.amount)[1] > 0)
        earlier = _recent_duplicate(conn, sender.id, order.digest)
        if earlier is not None:
            return earlier
    tip_id = uuid.uuid4()
    # With an Idempotency-Key the ledger key is derived from it, a second guard behind lib.idempotency.
    key = f"tip:{sender.id}:{idempotency_key}" if idempotency_key else f"tip:{tip_id}"
    stream_id = order.stream.id if order.stream else None
    moved = ledger.transfer(
        conn,
        from_user=sender.id,
        to_user=order.creator.id,
        amount=order.amount,
        kind="tip",
        reference_type="tip",
        reference_id=str(tip_id),
        idempotency_key=key,
        metadata={
            "stream_id": str(stream_id) if stream_id else None,
            "gift_type": order.gift.id if order.gift else None,
            "quantity": order.quantity,
        },
    )
    if moved is None:
        raise Conflict("This tip was already sent", code="DUPLICATE_TIP")
    conn.execute(
        """INSERT INTO tips (id, from_user_id, to_user_id, amount, creator_cut, platform_fee, message, stream_id,
                             ledger_entry_id, gift_type, gift_quantity, request_digest)
           VALUES (%(id)s, %(f)s, %(t)s, %(a)s, %(c)s, %(p)s, %(m)s, %(s)s, %(e)s, %(g)s, %(q)s, %(d)s)""",
        {
            "id": tip_id,
            "f": sender.id,
            "t": order.creator.id,
            "a": moved.amount,
            "c": moved.creator_cut,
            "p": moved.platform_fee,
            "m": order.message,
            "s": stream_id,
            "e": moved.id,
            "g": order.gift.id if order.gift else None,
            "q": order.quantity,
            "d": order.digest,
        },
    )
    if order.stream is not None:
        streams.record_tip(conn, order.stream.id, moved.amount)
    _publish(conn, sender, moved, tip_id, order)
    return TipOut(
        tipId=tip_id,
        amountTokens=moved.amount,
        new_balance=moved.from_balance,
        creatorCut=moved.creator_cut,
        platformFee=moved.platform_fee,
        streamId=stream_id,
        replayed=False,
    )


def _recent_duplicate(conn: Conn, sender_id: uuid.UUID, digest: str) -> TipOut | None:
    """The sender's tip with this digest from the last DUPLICATE_WINDOW_S, as answered then (balance as of now)."""
    row = conn.execute(
        """SELECT t.id, t.amount, t.creator_cut, t.platform_fee, t.stream_id, u.token_balance
           FROM tips t JOIN users u ON u.id = t.from_user_id
           WHERE t.from_user_id = %(s)s AND t.request_digest = %(d)s
             AND t.created_at > now() - make_interval(secs => %(w)s)
           ORDER BY t.created_at DESC LIMIT 1""",
        {"s": sender_id, "d": digest, "w": DUPLICATE_WINDOW_S},
    ).fetchone()
    if row is None:
        return None
    return TipOut(
        tipId=row["id"],
        amountTokens=row["amount"],
        new_balance=row["token_balance"],
        creatorCut=row["creator_cut"],
        platformFee=row["platform_fee"],
        streamId=row["stream_id"],
        replayed=True,
    )


def _publish(conn: Conn, sender: User, moved: ledger.Transfer, tip_id: uuid.UUID, order: _Order) -> None:
    reason = "gift" if order.gift else "tip"
    realtime.publish_balance(
        conn, sender.id, balance=moved.from_balance, delta=-moved.amount, reason=f"{reason}_sent"
    )
    realtime.publish_balance(
        conn, moved.to_user, balance=moved.to_balance, delta=moved.creator_cut, reason=f"{reason}_received"
    )
    realtime.publish(
        conn,
        realtime.user_channel(moved.to_user),
        realtime.Event.TIP_RECEIVED,
        realtime.tip_received(
            tip_id=tip_id, amount_tokens=moved.amount, from_user_id=sender.id, from_username=sender.username
        ),
    )
    stream = order.stream
    if stream is None:
        return
    name = sender.display_name or sender.username
    if order.gift is not None and order.quantity is not None:
        realtime.publish(
            conn,
            realtime.stream_channel(stream.channel),
            realtime.Event.STREAM_GIFT,
            realtime.stream_gift(
                gift_id=tip_id,
                stream_id=stream.id,
                channel=stream.channel,
                gift_type=order.gift.id,
                name=order.gift.name,
                emoji=order.gift.emoji,
                rarity=order.gift.rarity,
                quantity=order.quantity,
                unit_cost=order.gift.cost,
                sender=name,
                from_username=sender.username,
            ),
        )
        return
    realtime.publish(
        conn,
        realtime.stream_channel(stream.channel),
        realtime.Event.STREAM_TIP,
        realtime.stream_tip(
            tip_id=tip_id,
            stream_id=stream.id,
            channel=stream.channel,
            amount_tokens=moved.amount,
            sender=name,
            from_username=sender.username,
            message=order.message,
        ),
    )

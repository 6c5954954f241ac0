"""Tips: a fan sends tokens to a creator, optionally during a live stream."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from lib import ledger, realtime, streams, users
from lib.db import Conn
from lib.errors import BadRequest, Conflict, NotFound
from lib.users import User

MAX_TIP = 100_000


class TipContext(BaseModel):
    """Where the tip was sent from (a live stream)."""

    model_config = ConfigDict(populate_by_name=True)

    stream_id: uuid.UUID | None = Field(default=None, alias="streamId")
    channel: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class TipRequest(BaseModel):
    """POST /tips/send; amountTokens is a JSON integer (strings, floats and booleans are 422)."""

    model_config = ConfigDict(populate_by_name=True)

    to_creator_id: uuid.UUID = Field(alias="toCreatorId")
    amount_tokens: StrictInt = Field(alias="amountTokens", ge=1, le=MAX_TIP)
    message: Annotated[str, Field(max_length=500)] | None = None
    context: TipContext | None = None


class TipResult(BaseModel):
    """POST /tips/send response."""

    model_config = ConfigDict(populate_by_name=True)

    tip_id: uuid.UUID = Field(serialization_alias="tipId")
    amount_tokens: int = Field(serialization_alias="amountTokens")
    new_balance: int
    creator_cut: int = Field(serialization_alias="creatorCut")
    platform_fee: int = Field(serialization_alias="platformFee")


def send_tip(conn: Conn, sender: User, req: TipRequest, *, idempotency_key: str | None = None) -> TipResult:
    """Move the tip through the ledger, record it, and queue the realtime events for after the commit."""
    if req.to_creator_id == sender.id:
        raise BadRequest("You cannot tip yourself", code="SELF_TIP")
    creator = users.get(conn, req.to_creator_id)
    if creator is None:
        raise NotFound("Creator not found", code="CREATOR_NOT_FOUND")
    if not creator.is_creator:
        raise BadRequest("Tips can only be sent to creators", code="NOT_A_CREATOR")
    stream = _stream_of(conn, req.context, creator.id)
    tip_id = uuid.uuid4()
    # With an Idempotency-Key the ledger key is derived from it, a second guard behind lib.idempotency.
    key = f"tip:{sender.id}:{idempotency_key}" if idempotency_key else f"tip:{tip_id}"
    moved = ledger.transfer(
        conn,
        from_user=sender.id,
        to_user=creator.id,
        amount=req.amount_tokens,
        kind="tip",
        reference_type="tip",
        reference_id=str(tip_id),
        idempotency_key=key,
        metadata={"stream_id": str(stream) if stream else None},
    )
    if moved is None:
        raise Conflict("This tip was already sent", code="DUPLICATE_TIP")
    conn.execute(
        """INSERT INTO tips (id, from_user_id, to_user_id, amount, creator_cut, platform_fee, message, stream_id,
                             ledger_entry_id)
           VALUES (%(id)s, %(f)s, %(t)s, %(a)s, %(c)s, %(p)s, %(m)s, %(s)s, %(e)s)""",
        {
            "id": tip_id,
            "f": sender.id,
            "t": creator.id,
            "a": moved.amount,
            "c": moved.creator_cut,
            "p": moved.platform_fee,
            "m": req.message,
            "s": stream,
            "e": moved.id,
        },
    )
    if stream is not None:
        streams.record_tip(conn, stream, moved.amount)
    _publish(
        conn,
        sender,
        moved,
        tip_id,
        req,
        stream_channel=req.context.channel if stream and req.context else None,
    )
    return TipResult(
        tip_id=tip_id,
        amount_tokens=moved.amount,
        new_balance=moved.from_balance,
        creator_cut=moved.creator_cut,
        platform_fee=moved.platform_fee,
    )


def _stream_of(conn: Conn, context: TipContext | None, creator_id: uuid.UUID) -> uuid.UUID | None:
    """The live stream the tip belongs to: the channel's live stream, if it is this creator's (else none)."""
    if context is None or context.channel is None:
        return None
    row = streams.live_stream_by_channel(conn, context.channel)
    if row is None or row["creator_id"] != creator_id:
        return None
    if context.stream_id is not None and row["id"] != context.stream_id:
        return None
    stream_id: uuid.UUID = row["id"]
    return stream_id


def _publish(
    conn: Conn,
    sender: User,
    moved: ledger.Transfer,
    tip_id: uuid.UUID,
    req: TipRequest,
    *,
    stream_channel: str | None,
) -> None:
    ledger.notify_balance(conn, sender.id, moved.from_balance, -moved.amount, "tip_sent")
    ledger.notify_balance(conn, moved.to_user, moved.to_balance, moved.creator_cut, "tip_received")
    realtime.publish(
        conn,
        realtime.user_channel(moved.to_user),
        realtime.Event.TIP_RECEIVED,
        realtime.tip_received(
            tip_id=tip_id, amount_tokens=moved.amount, from_user_id=sender.id, from_username=sender.username
        ),
    )
    if stream_channel is not None:
        realtime.publish(
            conn,
            realtime.stream_channel(stream_channel),
            realtime.Event.TIP_NEW,
            realtime.tip_new(
                tip_id=tip_id, amount_tokens=moved.amount, from_username=sender.username, message=req.message
            ),
        )

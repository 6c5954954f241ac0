"""A creator's prices, in whole tokens: per-minute call rates and per-message prices (PricingRatesModal)."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from lib.db import Conn
from lib.errors import NotFound, Unprocessable
from lib.users import CallRate, ItemPrice, User

# Key the frontend sends -> users column. `textMessage` also keeps the legacy `message_price` in step, as the
# pricing modal itself does when it saves the profile.
_RATE_COLUMNS = {
    "videoCall": "video_price",
    "voiceCall": "voice_price",
    "message": "message_price",
    "stream": "stream_price",
    "textMessage": "text_message_price",
    "imageMessage": "image_message_price",
    "audioMessage": "voice_memo_price",
    "videoMessage": "video_message_price",
}


class Rates(BaseModel):
    """Call rates 1-10,000 tokens a minute; message and stream prices 0-10,000 (0 = free); unknown keys ignored."""

    model_config = ConfigDict(extra="allow")

    videoCall: CallRate | None = None
    voiceCall: CallRate | None = None
    message: ItemPrice | None = None
    stream: ItemPrice | None = Field(default=None, validation_alias=AliasChoices("stream", "liveStream"))
    textMessage: ItemPrice | None = None
    imageMessage: ItemPrice | None = None
    audioMessage: ItemPrice | None = None
    videoMessage: ItemPrice | None = None


class RatesUpdate(BaseModel):
    """POST /creators/rates body."""

    model_config = ConfigDict(extra="forbid")

    rates: Rates


def get_rates(conn: Conn, creator: User) -> dict[str, Any]:
    """GET /creators/rates."""
    row = conn.execute(
        sql.SQL("SELECT {} FROM users WHERE id = %(id)s").format(
            sql.SQL(", ").join(map(sql.Identifier, _RATE_COLUMNS.values()))
        ),
        {"id": creator.id},
    ).fetchone()
    if row is None:
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return {"rates": {name: row[column] for name, column in _RATE_COLUMNS.items()}}


def set_rates(conn: Conn, creator: User, update: Rates) -> dict[str, Any]:
    """POST /creators/rates: set the rates sent (a rate cannot be cleared, only changed)."""
    extra = update.model_extra or {}
    sent = {name for name in update.model_fields_set if name not in extra}
    if not sent:
        raise Unprocessable(
            "Send at least one of: " + ", ".join(_RATE_COLUMNS),
            errors=[{"field": "rates", "message": "empty"}],
        )
    changes: dict[str, int] = {}
    for name in sorted(sent):
        value = getattr(update, name)
        if value is None:
            raise Unprocessable(
                f"rates.{name} cannot be null", errors=[{"field": f"rates.{name}", "message": "null"}]
            )
        changes[_RATE_COLUMNS[name]] = value
    if "textMessage" in sent and "message" not in sent:
        changes["message_price"] = changes["text_message_price"]
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)) for column in changes
    )
    conn.execute(
        sql.SQL("UPDATE users SET {}, updated_at = now() WHERE id = %(id)s").format(assignments),
        {**changes, "id": creator.id},
    )
    return {**get_rates(conn, creator), "ignored": sorted(extra)}

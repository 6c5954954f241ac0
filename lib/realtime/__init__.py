"""Realtime (Pusher): channel names, event payloads, a transactional outbox and channel authorization.

Events are written to `realtime_outbox` in the caller's transaction (`publish`), sent after the commit
(`flush`), and retried by the cleanup cron (`flush_pending`) when Pusher was unreachable. Event names and the
channels and payload each may carry are declared once, in `events`; payload builders live beside it by area.
"""

from lib.realtime.channels import (
    CALL_PREFIX,
    STREAM_PREFIX,
    USER_PREFIX,
    authorize_channel,
    call_channel,
    stream_channel,
    user_channel,
)
from lib.realtime.events import EVENTS, Event
from lib.realtime.outbox import (
    MAX_BATCH,
    MAX_DATA_BYTES,
    FlushResult,
    encode,
    flush,
    flush_pending,
    publish,
    publish_balance,
    publish_many,
    purge,
)
from lib.realtime.payloads import *  # noqa: F403  (the builders: realtime.call_request(...), ...)
from lib.realtime.payloads import __all__ as _payloads

__all__ = [
    "CALL_PREFIX",
    "EVENTS",
    "MAX_BATCH",
    "MAX_DATA_BYTES",
    "STREAM_PREFIX",
    "USER_PREFIX",
    "Event",
    "FlushResult",
    "authorize_channel",
    "call_channel",
    "encode",
    "flush",
    "flush_pending",
    "publish",
    "publish_balance",
    "publish_many",
    "purge",
    "stream_channel",
    "user_channel",
    *_payloads,
]

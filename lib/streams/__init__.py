"""Live streams: go live, join, heartbeats, end, the public directory and the stale-stream sweep.

`service` holds the operations the functions call, `queries` every SQL statement, `viewers` the Redis audience
counter and `models` the row and the bodies. Other domains call `live_stream_by_channel`, `record_tip` and
`is_live` (tips, profiles, Pusher auth); the cleanup cron calls `end_stale_streams`.
"""

from lib.streams.queries import channel_name, is_live, live_stream_by_channel, record_tip
from lib.streams.service import (
    HOST_HEARTBEAT_S,
    HOST_TIMEOUT_S,
    VIEWER_HEARTBEAT_S,
    directory,
    end_stale_streams,
    end_stream,
    go_live,
    heartbeat,
    join,
    leave,
)

__all__ = [
    "HOST_HEARTBEAT_S",
    "HOST_TIMEOUT_S",
    "VIEWER_HEARTBEAT_S",
    "channel_name",
    "directory",
    "end_stale_streams",
    "end_stream",
    "go_live",
    "heartbeat",
    "is_live",
    "join",
    "leave",
    "live_stream_by_channel",
    "record_tip",
]

"""Live streams: go live, join, liveness signals, end, the directories and the stale-stream sweep.

`service` holds the operations the functions call, `queries` every SQL statement, `viewers` the Redis audience
counter, `webhooks` the signed Agora and Pusher notifications, and `models` the row and the bodies. Other
domains call `live_stream_by_channel`, `record_tip` and `is_live` (tips, profiles, Pusher auth); the cleanup cron
calls `end_stale_streams`. Every host token lib.agora mints for a stream's channel renews that stream's lease.
"""

from lib import agora
from lib.streams.queries import channel_name, is_live, live_stream_by_channel, record_tip
from lib.streams.service import (
    HOST_HEARTBEAT_S,
    HOST_TIMEOUT_S,
    VIEWER_HEARTBEAT_S,
    admit_viewer,
    check_stream,
    directory,
    end_stale_streams,
    end_stream,
    go_live,
    heartbeat,
    host_token_minted,
    join,
    leave,
    run_check_job,
    upcoming,
)

agora.on_token_minted(host_token_minted)

__all__ = [
    "HOST_HEARTBEAT_S",
    "HOST_TIMEOUT_S",
    "VIEWER_HEARTBEAT_S",
    "admit_viewer",
    "channel_name",
    "check_stream",
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
    "run_check_job",
    "upcoming",
]

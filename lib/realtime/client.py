"""The Pusher SDK client, imported only when something is sent or authorized."""

from typing import TYPE_CHECKING

from lib.config import get_settings

if TYPE_CHECKING:
    import pusher


def pusher_client() -> "pusher.Pusher":
    import pusher  # imported here so functions that never publish don't pay for it at cold start

    s = get_settings()
    return pusher.Pusher(
        app_id=s.pusher_app_id,
        key=s.pusher_key,
        secret=s.pusher_secret.get_secret_value(),
        ssl=s.pusher_use_tls,
        host=s.pusher_host or None,
        port=s.pusher_port,
        cluster=s.pusher_cluster or None,
        timeout=s.pusher_timeout_s,  # connect and read: a hanging Pusher costs at most this per flush
    )

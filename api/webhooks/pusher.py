"""POST /api/webhooks/pusher: Pusher's channel webhooks (subscription counts of stream channels), signed."""

from lib.db import DbConn
from lib.http import create_app
from lib.streams import webhooks
from lib.streams.models import WebhookAck

app = create_app(rate_limit=None)  # authenticated by its signature, never rate limited


@app.post("/api/webhooks/pusher")
def pusher_webhook(webhook: webhooks.PusherNotification, conn: DbConn) -> WebhookAck:
    """`subscription_count`, `channel_occupied`, `channel_vacated` on `private-stream-*` set the viewer count.

    200 `{ok, applied}`; 401 unless X-Pusher-Key is the app key and X-Pusher-Signature signs the raw body.
    """
    return webhooks.apply_pusher(conn, webhook)

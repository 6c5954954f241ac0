"""POST /api/webhooks/agora: Agora's channel events (Notifications), signed with AGORA_NCS_SECRET."""

from lib.db import DbConn
from lib.http import create_app
from lib.streams import webhooks
from lib.streams.models import WebhookAck

app = create_app(rate_limit=None)  # authenticated by its signature, never rate limited


@app.post("/api/webhooks/agora")
def agora_webhook(event: webhooks.AgoraNotification, conn: DbConn) -> WebhookAck:
    """The host joining or leaving a stream's channel keeps it live or lets it end; audience events count viewers.

    200 `{ok, applied}` once handled (repeats and other channels too); 401 for a bad or missing signature.
    """
    return webhooks.apply_agora(conn, event)

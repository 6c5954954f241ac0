"""POST /api/payments/webhook (and /api/webhooks/stripe): Stripe events, verified over the raw body."""

from lib.db import DbConn
from lib.http import create_app
from lib.payments import webhooks

app = create_app(rate_limit=None)  # authenticated by its signature, never rate limited


@app.post("/api/payments/webhook", response_model=webhooks.WebhookAck)
@app.post("/api/webhooks/stripe", response_model=webhooks.WebhookAck, include_in_schema=False)
def stripe_webhook(event: webhooks.StripeEvent, conn: DbConn) -> webhooks.WebhookAck:
    """200 once handled (or already seen); 400 for a bad signature; 5xx on a transient failure so Stripe retries."""
    return webhooks.handle_event(conn, event)

"""POST /api/payments/webhook (and /api/webhooks/stripe): Stripe events, verified over the raw body."""

from lib import stripe_webhooks
from lib.db import DbConn
from lib.http import create_app

app = create_app(rate_limit=None)  # authenticated by its signature, never rate limited


@app.post("/api/payments/webhook", response_model=stripe_webhooks.WebhookAck)
@app.post("/api/webhooks/stripe", response_model=stripe_webhooks.WebhookAck, include_in_schema=False)
def stripe_webhook(event: stripe_webhooks.StripeEvent, conn: DbConn) -> stripe_webhooks.WebhookAck:
    """200 once handled (or already seen); 400 for a bad signature; 5xx on a transient failure so Stripe retries."""
    return stripe_webhooks.handle_event(conn, event)

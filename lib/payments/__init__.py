"""Payments: token packs, Stripe purchases, and the webhook that turns Stripe's events into ledger rows.

- `packages`: the packs on sale (GET /tokens/packages).
- `purchases`: PaymentIntents and Checkout Sessions for packs, and `sync_payment`, the only path from a payment to
  the ledger (credit once per intent; refunds and disputes claw back, won disputes reinstate).
- `clawbacks`: what a refund or dispute takes back and from whom (the buyer's unspent tokens, then the creator
  earnings the purchase paid for, newest first, then the buyer's debt); a won dispute gives it back.
- `webhooks`: the handlers of Stripe's payment events (lib/stripe_webhooks verifies, dedupes and dispatches).
- `stripe_api`: the only module that imports the Stripe SDK.
- `wallet`: GET /wallet (the balance under the wallet pages' names).
"""

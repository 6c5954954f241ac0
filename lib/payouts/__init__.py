"""Creator payouts: earnings held for a reserve window, then paid out through Stripe Connect.

- `earnings`: held / available / pending / paid, derived from the ledger at a given moment (`clock.now()`).
- `accounts`: one connected Express account per creator, onboarding links, account.updated.
- `transfers`: a payout request takes available tokens out of the balance (ledger `payout`); its Stripe
  transfer goes after the commit with a key derived from the payout id; failures return the tokens.
- `webhooks`: Connect events (account.updated, transfer.*, payout.*), dispatched from lib/payments/webhooks.
- `reports`: the creator dashboard and the /admin/stats section.
What a refund or dispute takes back from a creator's earnings lives with the payments (lib/payments/clawbacks).
"""

from lib.payouts import clock
from lib.payouts.accounts import account_of, apply_account_update, start_onboarding
from lib.payouts.earnings import amount_cents, earnings_of, reserve
from lib.payouts.models import (
    Dashboard,
    Earnings,
    OnboardingRequest,
    OnboardingResult,
    PayoutOut,
    PayoutRequest,
    PayoutResult,
    StripeAccountOut,
)
from lib.payouts.reports import admin_section, dashboard
from lib.payouts.transfers import request_payout, retry_stalled_transfers, send_transfer

__all__ = [
    "Dashboard",
    "Earnings",
    "OnboardingRequest",
    "OnboardingResult",
    "PayoutOut",
    "PayoutRequest",
    "PayoutResult",
    "StripeAccountOut",
    "account_of",
    "admin_section",
    "amount_cents",
    "apply_account_update",
    "clock",
    "dashboard",
    "earnings_of",
    "request_payout",
    "reserve",
    "retry_stalled_transfers",
    "send_transfer",
    "start_onboarding",
]

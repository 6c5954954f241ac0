"""Creator payouts: earnings held for a reserve window, then paid out through Stripe Connect.

- `earnings`: held / available / pending / paid, derived from the ledger at a given moment (`clock.now()`).
- `accounts`: one connected Express account per creator, onboarding links, account.updated.
- `transfers`: a payout request takes available tokens out of the balance (ledger `payout`); its Stripe
  transfer goes after the commit with a key derived from the payout id; failures return the tokens.
- `webhooks`: Connect events (account.updated, transfer.*, payout.*), dispatched from lib/stripe_webhooks.
- `reports`: the creator dashboard, payout history and the /admin/stats section.
- `preferences`: payout settings and withdrawal settings (reserved tokens, auto-withdraw).
- `intents`: Release Funds requests and the payout run that honours them (a cleanup-cron step).
What a refund or dispute takes back from a creator's earnings lives with the payments (lib/payments/clawbacks).
"""

from lib.payouts import clock
from lib.payouts.accounts import account_of, apply_account_update, start_onboarding, stripe_account_view
from lib.payouts.earnings import amount_cents, earnings_of, reserve
from lib.payouts.intents import cancel_intent, intent_view, queue_intent, run_payout_intents
from lib.payouts.models import (
    STRIPE_UNAVAILABLE,
    BankPayoutList,
    Dashboard,
    Earnings,
    OnboardingRequest,
    OnboardingResult,
    PayoutHistory,
    PayoutIntentView,
    PayoutOut,
    PayoutPreferences,
    PayoutPreferencesUpdate,
    PayoutRequest,
    PayoutResult,
    StripeAccountOut,
    StripeAccountView,
    WithdrawalSettingsOut,
    WithdrawalSettingsUpdate,
)
from lib.payouts.preferences import (
    payout_preferences,
    preferences_of,
    update_payout_preferences,
    update_withdrawal_page,
    withdrawal_page,
)
from lib.payouts.reports import admin_section, bank_payouts, dashboard, payout_history
from lib.payouts.transfers import request_payout, retry_stalled_transfers, send_transfer

__all__ = [
    "STRIPE_UNAVAILABLE",
    "BankPayoutList",
    "Dashboard",
    "Earnings",
    "OnboardingRequest",
    "OnboardingResult",
    "PayoutHistory",
    "PayoutIntentView",
    "PayoutOut",
    "PayoutPreferences",
    "PayoutPreferencesUpdate",
    "PayoutRequest",
    "PayoutResult",
    "StripeAccountOut",
    "StripeAccountView",
    "WithdrawalSettingsOut",
    "WithdrawalSettingsUpdate",
    "account_of",
    "admin_section",
    "amount_cents",
    "apply_account_update",
    "bank_payouts",
    "cancel_intent",
    "clock",
    "dashboard",
    "earnings_of",
    "intent_view",
    "payout_history",
    "payout_preferences",
    "preferences_of",
    "queue_intent",
    "request_payout",
    "reserve",
    "retry_stalled_transfers",
    "run_payout_intents",
    "send_transfer",
    "start_onboarding",
    "stripe_account_view",
    "update_payout_preferences",
    "update_withdrawal_page",
    "withdrawal_page",
]

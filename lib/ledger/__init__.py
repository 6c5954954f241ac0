"""The token ledger: every balance change in Digis goes through here.

`users.token_balance` caches the sum of the user's `token_transactions.amount`; `users.token_debt` caches the sum
of `token_debts.amount` (tokens clawed back by a refund or dispute after they were spent). Both ledgers are
append-only (the database refuses UPDATE/DELETE/TRUNCATE), and every posting is written in the same statement as
the cached balance it explains. Nothing here commits: the caller's transaction does.

Rules every function keeps:
- Users are locked (`SELECT ... ORDER BY id FOR UPDATE`) in one consistent order before anything changes, so
  opposite transfers cannot deadlock, and the idempotency check after the lock sees every committed use of a key.
- A debit is one conditional statement (`... WHERE token_balance >= amount`), never read-then-write.
- An `idempotency_key` already used makes the call return None with no second effect.
- Fees: `platform_fee = floor(amount * PLATFORM_FEE_PERCENT / 100)`, `creator_cut = amount - platform_fee`, so a
  payer's debit equals the payee's credit plus the fee exactly, and rounding always favours the creator.
- Credits pay the user's debt first (a `debt_repayment` posting in both ledgers).
- The platform account is a `users` row with role 'system' and the fixed id PLATFORM_USER_ID (created by
  migration 0020, re-created on demand); fees are ordinary postings to it.
- Provenance: a transfer spends the payer's purchase lots (`purchase_lots`) oldest first and records which
  purchases paid for it (`earning_sources`) in the same statement; any other debit shrinks the user's lots to
  the balance (`clamp_lots`), so lots never exceed the balance. Refunds use it (lib/payments/clawbacks).
- Conservation (checked by `reconcile`): sum(balances, platform included) - sum(debts) == tokens that payments
  currently give (payments.tokens_applied) + net tokens of OUTSIDE_KINDS (adjustments, payouts); transfers and debt
  repayments net to zero. Debts are subtracted: a refund of spent tokens removes them from circulation on paper.
  `reconcile` also checks payouts against their ledger rows and purchase lots against balances.
"""

from lib.ledger.models import (
    DEBT_REPAYMENT,
    OUTSIDE_KINDS,
    PAYMENT_KINDS,
    PLATFORM_FEE,
    PLATFORM_USER_ID,
    PLATFORM_USERNAME,
    Drift,
    Entry,
    Report,
    Transfer,
    TransferOutcome,
    TransferRequest,
)
from lib.ledger.postings import (
    clamp_lots,
    credit,
    debit,
    ensure_platform_account,
    lock_users,
    split_fee,
)
from lib.ledger.reads import (
    BalanceOut,
    TransactionOut,
    TransactionPage,
    balance,
    balance_summary,
    debt,
    key_was_used,
    transactions,
)
from lib.ledger.reconcile import reconcile
from lib.ledger.transfers import transfer, transfer_many

__all__ = [
    "DEBT_REPAYMENT",
    "OUTSIDE_KINDS",
    "PAYMENT_KINDS",
    "PLATFORM_FEE",
    "PLATFORM_USERNAME",
    "PLATFORM_USER_ID",
    "BalanceOut",
    "Drift",
    "Entry",
    "Report",
    "TransactionOut",
    "TransactionPage",
    "Transfer",
    "TransferOutcome",
    "TransferRequest",
    "balance",
    "balance_summary",
    "clamp_lots",
    "credit",
    "debit",
    "debt",
    "ensure_platform_account",
    "key_was_used",
    "lock_users",
    "reconcile",
    "split_fee",
    "transactions",
    "transfer",
    "transfer_many",
]

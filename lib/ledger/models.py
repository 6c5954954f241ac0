"""The ledger's values: transfers, entries, batch requests and outcomes, the reconciliation report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

PLATFORM_USER_ID = UUID("00000000-0000-0000-0000-000000000001")
PLATFORM_USERNAME = "digis_platform"

# Kinds whose tokens enter or leave the system through a Stripe payment (cross-checked against payments).
# A refund or dispute of tokens the buyer spent takes them back from the earnings they paid for (the creator's
# cut, the platform's fee), and a won dispute gives them back: lib/payments/clawbacks.
PAYMENT_KINDS = frozenset(
    {
        "purchase",
        "refund",
        "dispute",
        "dispute_reversal",
        "earning_reversal",
        "earning_reinstated",
        "fee_reversal",
        "fee_reinstated",
    }
)
# Kinds whose tokens enter or leave the system some other way (admin corrections, creator payouts); a domain
# that adds such a kind adds it here, or reconcile reports the tokens as created or destroyed.
OUTSIDE_KINDS = {"adjustment", "payout", "payout_reversal"}
DEBT_REPAYMENT = "debt_repayment"
PLATFORM_FEE = "platform_fee"

UserId = UUID | str


@dataclass(frozen=True)
class Transfer:
    """A completed payer -> payee transfer (`id` is the ledger entry id shared by its postings)."""

    id: UUID
    from_user: UUID
    to_user: UUID
    amount: int
    creator_cut: int
    platform_fee: int
    from_balance: int
    to_balance: int
    kind: str
    idempotency_key: str


@dataclass(frozen=True)
class Entry:
    """A completed one-sided change: what moved on the balance and on the debt."""

    id: UUID
    user_id: UUID
    kind: str
    amount: int  # signed, as asked: credits > 0, debits < 0
    balance_change: int  # signed change of token_balance, debt repayment included
    debt_change: int  # signed change of token_debt
    balance_after: int
    debt_after: int


@dataclass(frozen=True)
class TransferRequest:
    """One transfer for `transfer_many`."""

    from_user: UserId
    to_user: UserId
    amount: int
    kind: str
    reference_type: str
    reference_id: str
    idempotency_key: str
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TransferOutcome:
    """What `transfer_many` did with one request: `ok` (with `transfer`), `duplicate` or `insufficient`."""

    request: TransferRequest
    status: Literal["ok", "duplicate", "insufficient"]
    transfer: Transfer | None = None
    current_balance: int | None = None  # the payer's balance after the batch (for `insufficient`)


@dataclass(frozen=True)
class Drift:
    """A user whose cached value differs from its ledger sum."""

    user_id: UUID
    cached: int
    ledger: int


@dataclass
class Report:
    """The result of `reconcile`."""

    users_checked: int = 0
    balance_drift: list[Drift] = field(default_factory=list)
    debt_drift: list[Drift] = field(default_factory=list)
    chain_breaks: list[dict[str, Any]] = field(default_factory=list)
    balances_total: int = 0  # every user's token_balance, the platform account included
    debts_total: int = 0
    payments_total: int = 0  # tokens Stripe payments currently give (payments.tokens_applied)
    outside_total: int = 0  # net tokens from adjustments and payouts
    internal_net: int = 0  # transfers and debt repayments: must be 0
    payouts_drift: int = 0  # tokens the payouts table says left minus what the ledger's payout rows say
    lot_excess: list[Drift] = field(default_factory=list)  # users whose purchase lots exceed their balance

    @property
    def conservation_drift(self) -> int:
        """(balances - debts) - (payments + outside): 0 when no token was created or destroyed."""
        return (self.balances_total - self.debts_total) - (self.payments_total + self.outside_total)

    @property
    def ok(self) -> bool:
        """True when the books balance."""
        return not (
            self.balance_drift
            or self.debt_drift
            or self.chain_breaks
            or self.conservation_drift
            or self.internal_net
            or self.payouts_drift
            or self.lot_excess
        )

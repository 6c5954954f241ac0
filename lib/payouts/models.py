"""Payout values: request and response bodies, and a creator's earnings at a moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

PayoutStatus = str  # pending | in_transit | paid | failed | reversed (payouts_status_check)
OPEN_STATUSES = ("pending", "in_transit")


@dataclass(frozen=True)
class Earnings:
    """A creator's tokens by state at one moment (see lib/payouts/earnings.py for the rules)."""

    balance: int
    debt: int
    held: int  # earned inside the reserve window, still in the balance
    available: int  # payable now
    pending: int  # in payouts on their way (pending, in_transit)
    paid: int  # in payouts Stripe reports paid
    next_release_at: datetime | None  # when the oldest held earning becomes available


class PayoutOut(BaseModel):
    """One payout as the creator sees it."""

    id: UUID
    tokens: int
    amountCents: int
    status: str
    tokensReturned: int = 0
    createdAt: datetime | None = None
    transferredAt: datetime | None = None
    paidAt: datetime | None = None
    failedAt: datetime | None = None
    failureCode: str | None = None
    failureMessage: str | None = None


class PayoutRequest(BaseModel):
    """POST /creator-payouts/request-payout: `tokens` (a JSON integer) or nothing for everything available."""

    model_config = ConfigDict(extra="forbid")

    tokens: StrictInt | None = Field(default=None, ge=1, le=100_000_000)


class PayoutResult(BaseModel):
    """POST /creator-payouts/request-payout response."""

    payout: PayoutOut


class StripeAccountOut(BaseModel):
    """The creator's connected account."""

    id: str
    payoutsEnabled: bool
    detailsSubmitted: bool
    disabledReason: str | None = None
    currentlyDue: list[str] = Field(default_factory=list)


class Dashboard(BaseModel):
    """GET /creator-payouts/dashboard."""

    availableTokens: int
    heldTokens: int
    pendingTokens: int
    paidTokens: int
    debtTokens: int
    availableCents: int
    heldCents: int
    tokenUsdValue: float
    minimumPayoutTokens: int
    reserveDays: int
    nextReleaseAt: datetime | None
    payouts: list[PayoutOut]
    stripeAccount: StripeAccountOut | None


class OnboardingRequest(BaseModel):
    """POST /creator-payouts/stripe-account/create: where Stripe sends the creator back."""

    model_config = ConfigDict(populate_by_name=True)

    return_url: str = Field(alias="returnUrl", min_length=8, max_length=2000)
    refresh_url: str = Field(alias="refreshUrl", min_length=8, max_length=2000)


class OnboardingResult(BaseModel):
    """POST /creator-payouts/stripe-account/create response."""

    url: str
    accountId: str
    payoutsEnabled: bool

"""Payout values: request and response bodies, and a creator's earnings at a moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

# Routes that call Stripe before answering document its outage (503 problem+json, code PAYMENTS_UNAVAILABLE).
STRIPE_UNAVAILABLE: dict[int | str, dict[str, str]] = {
    503: {
        "description": "Stripe is unreachable or refused our key (`code: PAYMENTS_UNAVAILABLE`); try again."
    }
}
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


class PayoutCreated(BaseModel):
    """The `data` mirror of a payout request (the frontend reads `response.data.success`)."""

    success: bool = True
    payout: PayoutOut


class PayoutResult(BaseModel):
    """POST /creator-payouts/request-payout response: {success, payout, data: {success, payout}}."""

    success: bool = True
    payout: PayoutOut
    data: PayoutCreated | None = None

    def model_post_init(self, _context: object) -> None:
        """Fill the mirror."""
        if self.data is None:
            self.data = PayoutCreated(success=self.success, payout=self.payout)


class StripeAccountOut(BaseModel):
    """The creator's connected account."""

    id: str
    payoutsEnabled: bool
    detailsSubmitted: bool
    disabledReason: str | None = None
    currentlyDue: list[str] = Field(default_factory=list)


class DashboardSummary(BaseModel):
    """`dashboard` as CreatorPayoutDashboard.js reads it (USD as decimal dollars, for display)."""

    pending_usd: float  # what a payout request would pay now: available less the creator's reserved tokens
    can_receive_payouts: bool  # Stripe onboarding finished (payouts enabled)
    available_tokens: int
    withdrawable_tokens: int
    held_tokens: int
    pending_payout_tokens: int
    paid_tokens: int
    minimum_payout_tokens: int
    minimum_payout_usd: float


class PayoutRow(BaseModel):
    """A payout as the frontend's payout tables read it."""

    id: UUID
    tokens_earned: int  # tokens the payout took from the balance
    usd_amount: float
    platform_fee_amount: float  # always 0: the platform fee is taken when tokens are earned, not at payout
    net_payout_amount: float  # usd_amount less whatever Stripe reversed
    payout_period_start: datetime  # the creator's previous payout (or their sign-up)
    payout_period_end: datetime  # this payout's request
    status: str  # pending | processing | paid | failed | reversed
    created_at: datetime
    paid_at: datetime | None = None


class EarningRow(BaseModel):
    """One earning (tip, call minute, ...) as RecentEarnings reads it."""

    id: str
    earning_type: str  # tip | session | gift | ...
    description: str
    fan_name: str | None
    earned_at: datetime
    tokens_earned: int
    usd_value: float


class Dashboard(BaseModel):
    """GET /creator-payouts/dashboard: our fields, plus `dashboard`, `recentPayouts`, `recentEarnings`."""

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
    dashboard: DashboardSummary
    recentPayouts: list[PayoutRow]
    recentEarnings: list[EarningRow]


class PayoutHistory(BaseModel):
    """GET /creator-payouts/history?page&limit."""

    payouts: list[PayoutRow]
    page: int
    limit: int
    total: int
    totalPages: int
    hasMore: bool


class OnboardingRequest(BaseModel):
    """Where Stripe sends the creator back: both URLs, or neither (then the settings' defaults)."""

    return_url: str | None = Field(
        default=None, validation_alias=AliasChoices("returnUrl", "return_url"), min_length=8, max_length=2000
    )
    refresh_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("refreshUrl", "refresh_url"),
        min_length=8,
        max_length=2000,
    )


class OnboardingResult(BaseModel):
    """POST /creator-payouts/stripe-account/create and /stripe/account-link response."""

    url: str
    onboardingUrl: str
    accountId: str
    payoutsEnabled: bool


class ConnectAccount(BaseModel):
    """The connected account in Stripe's field names (PayoutSettings.js reads them)."""

    id: str
    payouts_enabled: bool
    charges_enabled: bool
    details_submitted: bool
    disabled_reason: str | None = None
    currently_due: list[str] = Field(default_factory=list)


class StripeAccountView(BaseModel):
    """GET /creator-payouts/stripe-account."""

    hasAccount: bool
    account: ConnectAccount | None
    stripeAccount: StripeAccountOut | None


class BankPayout(BaseModel):
    """A payout in the shape of a Stripe payout object (GET /stripe/payouts; amounts in cents)."""

    id: UUID
    amount: int
    currency: str
    arrival_date: int  # unix seconds: when it was paid, else when it was requested
    created: int
    description: str
    status: str  # pending | in_transit | paid | failed | reversed


class BankPayoutList(BaseModel):
    """GET /stripe/payouts."""

    payouts: list[BankPayout]


PayoutSchedule = Literal["weekly", "biweekly", "monthly"]


class PayoutPreferences(BaseModel):
    """GET|PUT /creator-payouts/settings (USD amounts as decimal dollars)."""

    payout_enabled: bool  # false: payout runs skip me (a request-payout still works)
    minimum_payout_amount: float  # my own floor for payout runs, USD (the platform's minimum applies anyway)
    platform_minimum_payout_amount: float
    payout_schedule: PayoutSchedule  # shown back only: payout runs follow the cron
    tax_form_submitted: bool  # always false: tax forms are not collected by this API


class PayoutPreferencesUpdate(BaseModel):
    """PUT /creator-payouts/settings: any subset (the page sends back what GET gave it; unknown keys are ignored)."""

    payout_enabled: StrictBool | None = None
    minimum_payout_amount: StrictInt | StrictFloat | None = Field(default=None, ge=0, le=1_000_000)
    payout_schedule: PayoutSchedule | None = None


class WithdrawalSettings(BaseModel):
    """`settings` of GET|PUT /payments/withdrawal-settings (tokens)."""

    autoWithdrawEnabled: bool  # every payout run pays out, without a Release Funds intent
    reservedBalance: int  # tokens kept in the balance, never paid out
    withdrawableBalance: int  # available for payout now, less reservedBalance
    availableBalance: int
    minimumPayoutTokens: int


class WithdrawalSettingsOut(BaseModel):
    """GET|PUT /payments/withdrawal-settings."""

    settings: WithdrawalSettings
    message: str | None = None


class WithdrawalSettingsUpdate(BaseModel):
    """PUT /payments/withdrawal-settings: either or both."""

    model_config = ConfigDict(extra="ignore")

    autoWithdrawEnabled: StrictBool | None = None
    reservedBalance: StrictInt | None = Field(default=None, ge=0, le=1_000_000_000)


IntentStatus = Literal["pending", "consumed", "cancelled"]


class PayoutIntentOut(BaseModel):
    """A Release Funds request."""

    id: UUID
    status: IntentStatus
    createdAt: datetime
    payoutId: UUID | None = None
    lastOutcome: str | None = None  # why the last payout run left it pending (BELOW_MINIMUM, ...)
    checkedAt: datetime | None = None
    consumedAt: datetime | None = None
    cancelledAt: datetime | None = None


class NextCycleInfo(BaseModel):
    """When the next payout run honours a pending intent."""

    description: str
    daysUntil: int
    cadence: str


class PayoutIntentView(BaseModel):
    """GET|POST|DELETE /creator-payouts/intent (WalletOptimized reads ok/intent, PayoutSettings the rest)."""

    ok: bool = True
    intent: PayoutIntentOut | None
    hasIntent: bool
    currentIntent: PayoutIntentOut | None
    nextCycleInfo: NextCycleInfo
    message: str | None = None

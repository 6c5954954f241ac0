"""A creator's payout preferences: the settings page's fields and the wallet's withdrawal settings (one row each).

What they change: `reserved_tokens` is never paid out (a request without `tokens` and every payout run pay the
available tokens less it); `auto_withdraw_enabled` makes every payout run pay out without a Release Funds intent;
`payout_enabled = false` makes payout runs skip the creator; `minimum_payout_cents` is the creator's own floor for
payout runs (the platform's PAYOUT_MINIMUM_TOKENS always applies). An explicit request-payout ignores the last two.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from lib.config import get_settings
from lib.db import Conn
from lib.payouts import clock
from lib.payouts.earnings import amount_cents, earnings_of
from lib.payouts.models import (
    Earnings,
    PayoutPreferences,
    PayoutPreferencesUpdate,
    WithdrawalSettings,
    WithdrawalSettingsOut,
    WithdrawalSettingsUpdate,
)


@dataclass(frozen=True)
class Preferences:
    """One creator's stored preferences (the defaults while they saved none)."""

    payout_enabled: bool = True
    payout_schedule: str = "biweekly"
    minimum_payout_cents: int = 0
    auto_withdraw_enabled: bool = False
    reserved_tokens: int = 0

    def withdrawable(self, mine: Earnings) -> int:
        """Available tokens a payout may take: all of them but the reserved ones."""
        return max(0, mine.available - self.reserved_tokens)


def preferences_of(conn: Conn, creator_id: UUID) -> Preferences:
    """The creator's preferences."""
    row = conn.execute(
        """SELECT payout_enabled, payout_schedule, minimum_payout_cents, auto_withdraw_enabled, reserved_tokens
           FROM payout_settings WHERE creator_id = %(u)s""",
        {"u": creator_id},
    ).fetchone()
    return Preferences(**row) if row else Preferences()


def save_preferences(conn: Conn, creator_id: UUID, **changes: Any) -> Preferences:
    """Change the given preferences (None leaves one as it is) and return them all."""
    conn.execute(
        """INSERT INTO payout_settings (creator_id, payout_enabled, payout_schedule, minimum_payout_cents,
                                        auto_withdraw_enabled, reserved_tokens)
           VALUES (%(u)s, coalesce(%(pe)s::boolean, true), coalesce(%(ps)s::text, 'biweekly'),
                   coalesce(%(mc)s::bigint, 0), coalesce(%(aw)s::boolean, false), coalesce(%(rt)s::bigint, 0))
           ON CONFLICT (creator_id) DO UPDATE
           SET payout_enabled = coalesce(%(pe)s::boolean, payout_settings.payout_enabled),
               payout_schedule = coalesce(%(ps)s::text, payout_settings.payout_schedule),
               minimum_payout_cents = coalesce(%(mc)s::bigint, payout_settings.minimum_payout_cents),
               auto_withdraw_enabled = coalesce(%(aw)s::boolean, payout_settings.auto_withdraw_enabled),
               reserved_tokens = coalesce(%(rt)s::bigint, payout_settings.reserved_tokens),
               updated_at = now()""",
        {
            "u": creator_id,
            "pe": changes.get("payout_enabled"),
            "ps": changes.get("payout_schedule"),
            "mc": changes.get("minimum_payout_cents"),
            "aw": changes.get("auto_withdraw_enabled"),
            "rt": changes.get("reserved_tokens"),
        },
    )
    return preferences_of(conn, creator_id)


def payout_preferences(prefs: Preferences) -> PayoutPreferences:
    """GET /creator-payouts/settings."""
    return PayoutPreferences(
        payout_enabled=prefs.payout_enabled,
        minimum_payout_amount=prefs.minimum_payout_cents / 100,
        platform_minimum_payout_amount=amount_cents(get_settings().payout_minimum_tokens) / 100,
        payout_schedule=prefs.payout_schedule,  # type: ignore[arg-type]  # CHECKed by the table
        tax_form_submitted=False,
    )


def update_payout_preferences(
    conn: Conn, creator_id: UUID, req: PayoutPreferencesUpdate
) -> PayoutPreferences:
    """PUT /creator-payouts/settings."""
    cents = None
    if req.minimum_payout_amount is not None:
        cents = int((Decimal(str(req.minimum_payout_amount)) * 100).to_integral_value(rounding=ROUND_HALF_UP))
    prefs = save_preferences(
        conn,
        creator_id,
        payout_enabled=req.payout_enabled,
        payout_schedule=req.payout_schedule,
        minimum_payout_cents=cents,
    )
    return payout_preferences(prefs)


def withdrawal_settings(prefs: Preferences, mine: Earnings) -> WithdrawalSettings:
    """GET /payments/withdrawal-settings `settings`."""
    return WithdrawalSettings(
        autoWithdrawEnabled=prefs.auto_withdraw_enabled,
        reservedBalance=prefs.reserved_tokens,
        withdrawableBalance=prefs.withdrawable(mine),
        availableBalance=mine.available,
        minimumPayoutTokens=get_settings().payout_minimum_tokens,
    )


def save_withdrawal_settings(conn: Conn, creator_id: UUID, req: WithdrawalSettingsUpdate) -> Preferences:
    """PUT /payments/withdrawal-settings."""
    return save_preferences(
        conn, creator_id, auto_withdraw_enabled=req.autoWithdrawEnabled, reserved_tokens=req.reservedBalance
    )


def withdrawal_page(conn: Conn, creator_id: UUID, *, message: str | None = None) -> WithdrawalSettingsOut:
    """GET /payments/withdrawal-settings: the settings and what they leave withdrawable now."""
    mine = earnings_of(conn, creator_id, clock.now())
    return WithdrawalSettingsOut(
        settings=withdrawal_settings(preferences_of(conn, creator_id), mine), message=message
    )


def update_withdrawal_page(
    conn: Conn, creator_id: UUID, req: WithdrawalSettingsUpdate
) -> WithdrawalSettingsOut:
    """PUT /payments/withdrawal-settings."""
    save_withdrawal_settings(conn, creator_id, req)
    return withdrawal_page(conn, creator_id, message="Withdrawal settings saved")

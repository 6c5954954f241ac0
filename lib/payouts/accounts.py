"""Stripe Connect accounts: one Express account per creator, onboarding links, and account.updated."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from lib.config import get_settings
from lib.db import Conn
from lib.errors import Unprocessable
from lib.payments import stripe_api
from lib.payouts.models import (
    ConnectAccount,
    OnboardingRequest,
    OnboardingResult,
    StripeAccountOut,
    StripeAccountView,
)
from lib.urls import check_return_urls
from lib.users import User

log = logging.getLogger("digis.payouts")

_COLUMNS = "stripe_account_id, payouts_enabled, details_submitted, disabled_reason, currently_due"
# Where Stripe sends a creator who started onboarding without saying where (the frontend's wallet page).
DEFAULT_RETURN_PATH = "/wallet?stripe=return"
DEFAULT_REFRESH_PATH = "/wallet?stripe=refresh"


def account_of(conn: Conn, user_id: UUID) -> StripeAccountOut | None:
    """The creator's connected account, if they started onboarding."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM stripe_accounts WHERE user_id = %(u)s",  # noqa: S608 - fixed text
        {"u": user_id},
    ).fetchone()
    return _out(row) if row else None


def stripe_account_view(conn: Conn, user_id: UUID) -> StripeAccountView:
    """GET /creator-payouts/stripe-account: {hasAccount, account (Stripe's names), stripeAccount (ours)}."""
    row = conn.execute(
        f"SELECT {_COLUMNS}, charges_enabled FROM stripe_accounts WHERE user_id = %(u)s",  # noqa: S608 - fixed text
        {"u": user_id},
    ).fetchone()
    if row is None:
        return StripeAccountView(hasAccount=False, account=None, stripeAccount=None)
    return StripeAccountView(
        hasAccount=True,
        account=ConnectAccount(
            id=row["stripe_account_id"],
            payouts_enabled=row["payouts_enabled"],
            charges_enabled=row["charges_enabled"],
            details_submitted=row["details_submitted"],
            disabled_reason=row["disabled_reason"],
            currently_due=list(row["currently_due"] or []),
        ),
        stripeAccount=_out(row),
    )


def return_urls(req: OnboardingRequest | None) -> tuple[str, str]:
    """(return_url, refresh_url): both given, or the first exact ALLOWED_ORIGINS origin + the wallet page."""
    if req is not None and (req.return_url or req.refresh_url):
        missing = [
            name for name, v in (("returnUrl", req.return_url), ("refreshUrl", req.refresh_url)) if not v
        ]
        if missing:
            raise Unprocessable(
                "Give both returnUrl and refreshUrl, or neither",
                errors=[
                    {"field": name, "message": "required with the other", "type": "missing"}
                    for name in missing
                ],
            )
        assert req.return_url and req.refresh_url
        return req.return_url, req.refresh_url
    origin = next((o for o in get_settings().origins if "*" not in o), None)
    if origin is None:
        raise Unprocessable(
            "returnUrl and refreshUrl are required: ALLOWED_ORIGINS names no exact frontend origin",
            code="INVALID_RETURN_URL",
            errors=[{"field": "returnUrl", "message": "required", "type": "missing"}],
        )
    return origin + DEFAULT_RETURN_PATH, origin + DEFAULT_REFRESH_PATH


def start_onboarding(conn: Conn, creator: User, req: OnboardingRequest | None) -> OnboardingResult:
    """Create the creator's connected account (once) and a fresh onboarding link for it."""
    return_url, refresh_url = return_urls(req)
    check_return_urls({"returnUrl": return_url, "refreshUrl": refresh_url})
    # One creation per creator even under concurrent requests; an advisory lock, so the Stripe call below never
    # holds the creator's row (their earnings keep arriving meanwhile).
    digest = hashlib.sha256(f"connect-account:{creator.id}".encode()).digest()
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(k)s::bigint)", {"k": int.from_bytes(digest[:8], "big", signed=True)}
    )
    account = account_of(conn, creator.id)
    if account is None:
        # Keyed by the creator: a retry after a failed commit gets the same account back from Stripe.
        created = stripe_api.create_connected_account(
            user_id=str(creator.id), email=creator.email, idempotency_key=f"connect-account:{creator.id}"
        )
        conn.execute(
            """INSERT INTO stripe_accounts (user_id, stripe_account_id, payouts_enabled, charges_enabled,
                                            details_submitted, disabled_reason, currently_due)
               VALUES (%(u)s, %(a)s, %(p)s, %(c)s, %(d)s, %(r)s, %(due)s)""",
            {
                "u": creator.id,
                "a": created.id,
                "p": created.payouts_enabled,
                "c": created.charges_enabled,
                "d": created.details_submitted,
                "r": created.disabled_reason,
                "due": created.currently_due,
            },
        )
        account = account_of(conn, creator.id)
        assert account is not None
    url = stripe_api.create_account_link(
        account_id=account.id, refresh_url=refresh_url, return_url=return_url
    )
    return OnboardingResult(
        url=url, onboardingUrl=url, accountId=account.id, payoutsEnabled=account.payoutsEnabled
    )


def apply_account_update(conn: Conn, data: dict[str, Any], *, event_created: int | None) -> bool:
    """Record an account.updated snapshot (older snapshots than the one applied lose); False if not ours."""
    account = stripe_api.account_from(data)
    at = datetime.fromtimestamp(event_created, UTC) if event_created else datetime.now(UTC)
    row = conn.execute(
        """UPDATE stripe_accounts
           SET payouts_enabled = %(p)s, charges_enabled = %(c)s, details_submitted = %(d)s,
               disabled_reason = %(r)s, currently_due = %(due)s, stripe_updated_at = %(at)s, updated_at = now()
           WHERE stripe_account_id = %(a)s AND (stripe_updated_at IS NULL OR stripe_updated_at <= %(at)s)
           RETURNING user_id""",
        {
            "a": account.id,
            "p": account.payouts_enabled,
            "c": account.charges_enabled,
            "d": account.details_submitted,
            "r": account.disabled_reason,
            "due": account.currently_due,
            "at": at,
        },
    ).fetchone()
    if row is not None:
        return True
    known = conn.execute(
        "SELECT 1 FROM stripe_accounts WHERE stripe_account_id = %(a)s", {"a": account.id}
    ).fetchone()
    if known is None:
        log.info("account.updated for an account that is not ours: %s", account.id)
    return known is not None


def _out(row: Any) -> StripeAccountOut:
    return StripeAccountOut(
        id=row["stripe_account_id"],
        payoutsEnabled=row["payouts_enabled"],
        detailsSubmitted=row["details_submitted"],
        disabledReason=row["disabled_reason"],
        currentlyDue=list(row["currently_due"] or []),
    )

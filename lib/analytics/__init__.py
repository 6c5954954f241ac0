"""Creator earnings, analytics and loyalty, derived from the ledger (see service.py for the rules)."""

from lib.analytics.models import (
    BadgesOut,
    EarningsAnalytics,
    GiftStatsOut,
    Overview,
    Period,
    PollStatsOut,
    SubscriptionAnalyticsOut,
    TipStatsOut,
    TopFans,
)
from lib.analytics.service import (
    badges,
    earnings,
    gift_stats,
    overview,
    poll_stats,
    subscription_analytics,
    tier,
    tip_stats,
    top_fans,
    verify,
    window,
)

__all__ = [
    "BadgesOut",
    "EarningsAnalytics",
    "GiftStatsOut",
    "Overview",
    "Period",
    "PollStatsOut",
    "SubscriptionAnalyticsOut",
    "TipStatsOut",
    "TopFans",
    "badges",
    "earnings",
    "gift_stats",
    "overview",
    "poll_stats",
    "subscription_analytics",
    "tier",
    "tip_stats",
    "top_fans",
    "verify",
    "window",
]

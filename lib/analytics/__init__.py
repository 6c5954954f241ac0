"""Creator earnings, analytics and loyalty, derived from the ledger (see service.py for the rules)."""

from lib.analytics.loyalty import badges, tier, top_fans
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
from lib.analytics.rollups import window
from lib.analytics.service import earnings, overview, verify
from lib.analytics.stats import gift_stats, poll_stats, subscription_analytics, tip_stats

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

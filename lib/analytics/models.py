"""What the analytics routes answer (WalletOptimized, HybridCreatorDashboard, CreatorAnalytics, DualBadgeDisplay)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

Period = Literal["today", "yesterday", "week", "month", "year", "all", "24h", "7d", "30d", "90d"]
Level = Literal["none", "bronze", "silver", "gold", "diamond"]


class Breakdown(BaseModel):
    """Net tokens earned per kind (credits less refunds taken back); kinds not built yet are 0."""

    tips: int = 0
    subscriptions: int = 0
    content: int = 0
    messages: int = 0
    recordings: int = 0
    videoCalls: int = 0
    voiceCalls: int = 0
    gifts: int = 0
    vod: int = 0
    classes: int = 0
    other: int = 0


class Summary(BaseModel):
    totalEarnings: int = Field(description="all time, net tokens")
    periodEarnings: int = Field(description="the selected period")
    transactionCount: int


class PeriodEarnings(BaseModel):
    today: int
    yesterday: int
    week: int = Field(description="since Monday 00:00 UTC")
    month: int = Field(description="since the 1st, 00:00 UTC")
    year: int


class DailyAmount(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD")
    amount: int


class EarningsAnalytics(BaseModel):
    """GET /earnings/analytics?period=."""

    success: Literal[True] = True
    period: Period
    timezone: Literal["UTC"] = "UTC"
    unit: Literal["tokens"] = "tokens"
    start: str | None
    end: str
    summary: Summary
    periodEarnings: PeriodEarnings
    dailyEarnings: list[DailyAmount]
    breakdown: Breakdown


class Change(BaseModel):
    total: float
    previous: float
    trend: float = Field(description="percent change against the previous window")


class Engagement(BaseModel):
    rate: float = Field(description="paying fans in the window per 100 followers")
    previous: float
    trend: float
    videoCalls: int
    voiceCalls: int
    messages: int
    tips: int
    gifts: int


class Sessions(BaseModel):
    avgDuration: float = Field(description="minutes")
    previousAvg: float
    trend: float


class RevenuePoint(BaseModel):
    date: str
    revenue: int


class Today(BaseModel):
    earnings: int
    tips: int


class Monthly(BaseModel):
    earnings: int


class Pending(BaseModel):
    requests: int


class Active(BaseModel):
    streams: int


class Unread(BaseModel):
    messages: int


class Vips(BaseModel):
    count: int


class Overview(BaseModel):
    """GET /analytics/creator/{id}/overview?period=."""

    success: Literal[True] = True
    period: Period
    timezone: Literal["UTC"] = "UTC"
    revenue: Change
    followers: Change
    engagement: Engagement
    sessions: Sessions
    revenueHistory: list[RevenuePoint]
    today: Today
    monthly: Monthly
    pending: Pending
    active: Active
    unread: Unread
    vips: Vips


class Fan(BaseModel):
    id: uuid.UUID
    username: str
    name: str
    displayName: str | None
    avatar: str | None
    totalSpent: int
    tier: Level
    rank: int


class TopFans(BaseModel):
    """GET /analytics/creator/{id}/top-fans?period=."""

    success: Literal[True] = True
    period: Period
    fans: list[Fan]


class Loyalty(BaseModel):
    level: Level
    emoji: str
    totalTokens: int | None = Field(description="null unless the viewer is the fan, the creator or an admin")
    totalSpend: float | None = Field(description="USD at TOKEN_USD_VALUE; null as totalTokens")
    supportDays: int
    perks: list[str]
    creatorId: uuid.UUID | None


class Badges(BaseModel):
    loyalty: Loyalty
    subscription: None = None


class BadgesData(BaseModel):
    badges: Badges


class BadgesOut(BaseModel):
    """GET /loyalty/badges/{userId}: DualBadgeDisplay reads response.data.badges (apiClient), hence `data`."""

    success: Literal[True] = True
    badges: Badges
    data: BadgesData


class Received(BaseModel):
    count: int
    total_amount: int


class TipStatsBody(BaseModel):
    received: Received


class TipStatsOut(BaseModel):
    """GET /tips/stats?period= (CreatorAnalytics)."""

    success: Literal[True] = True
    period: Period
    stats: TipStatsBody


class GiftsReceived(BaseModel):
    count: int
    total_value: int


class GiftStatsBody(BaseModel):
    received: GiftsReceived


class GiftStatsOut(BaseModel):
    """GET /gifts/stats?period=."""

    success: Literal[True] = True
    period: Period
    stats: GiftStatsBody


class Subscribers(BaseModel):
    total: int = 0


class SubscriptionRevenue(BaseModel):
    monthly_recurring: int = 0
    lifetime_revenue: int = 0
    period_revenue: int = 0


class Growth(BaseModel):
    new_subscribers: int = 0
    renewal_rate: float = 0


class SubscriptionAnalyticsBody(BaseModel):
    active_subscribers: Subscribers
    revenue: SubscriptionRevenue
    growth: Growth


class SubscriptionAnalyticsOut(BaseModel):
    """GET /subscriptions/analytics?period=: from the ledger's subscription credits (none until they exist)."""

    success: Literal[True] = True
    period: Period
    analytics: SubscriptionAnalyticsBody


class PollsCreated(BaseModel):
    count: int = 0
    total_votes_received: int = 0


class PollStatsBody(BaseModel):
    created: PollsCreated


class PollStatsOut(BaseModel):
    """GET /polls/user/stats?period=: empty until polls exist."""

    success: Literal[True] = True
    period: Period
    stats: PollStatsBody

"""Tips and virtual gifts: a fan sends tokens to a creator, optionally during a live stream.

`service` sends both through one ledger transfer (a gift is a tip priced from `lib.gifts` x quantity) and replays
a retried request; `leaderboard` sums what a creator received per supporter; `models` holds the bodies and answers.
"""

from lib.tips.leaderboard import tip_stats
from lib.tips.models import (
    MAX_GIFT_QUANTITY,
    MAX_TIP,
    GiftRequest,
    GiftResult,
    Period,
    TipContext,
    TipOut,
    TipRequest,
    TipResult,
    TipStats,
    TopTipper,
)
from lib.tips.service import DUPLICATE_WINDOW_S, send_gift, send_tip

__all__ = [
    "DUPLICATE_WINDOW_S",
    "MAX_GIFT_QUANTITY",
    "MAX_TIP",
    "GiftRequest",
    "GiftResult",
    "Period",
    "TipContext",
    "TipOut",
    "TipRequest",
    "TipResult",
    "TipStats",
    "TopTipper",
    "send_gift",
    "send_tip",
    "tip_stats",
]

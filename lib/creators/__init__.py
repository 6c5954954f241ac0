"""Creators: the directory and public pages, prices, follows and favourites, search and discovery, applications."""

from lib.creators.applications import CreatorApplication, apply
from lib.creators.directory import SortBy, directory, public_page, public_profile
from lib.creators.discovery import DiscoveryQuery, DiscoverySort, Feed, categories, discover, search
from lib.creators.engagement import engagement
from lib.creators.follows import (
    FavoriteRequest,
    FollowRequest,
    creator_stats,
    favorite_request,
    follow,
    follow_counts,
    follow_request,
    unfollow,
)
from lib.creators.rates import Rates, RatesUpdate, get_rates, set_rates

__all__ = [
    "CreatorApplication",
    "DiscoveryQuery",
    "DiscoverySort",
    "FavoriteRequest",
    "Feed",
    "FollowRequest",
    "Rates",
    "RatesUpdate",
    "SortBy",
    "apply",
    "categories",
    "creator_stats",
    "directory",
    "discover",
    "engagement",
    "favorite_request",
    "follow",
    "follow_counts",
    "follow_request",
    "get_rates",
    "public_page",
    "public_profile",
    "search",
    "set_rates",
    "unfollow",
]

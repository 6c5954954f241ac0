"""Shared test helpers: tokens, function loading, users."""

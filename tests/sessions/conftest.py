"""Sessions tests use the calls fixtures: breakers closed, a fan with 100 tokens, a creator at 10/6 a minute."""

from tests.calls.conftest import _closed_breakers, creator, fan, outsider

__all__ = ["_closed_breakers", "creator", "fan", "outsider"]

"""When a booked call is: a date and time in the user's time zone, or an instant, checked against now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lib.calls.session_models import Slot
from lib.errors import Unprocessable

MIN_LEAD = timedelta(seconds=60)
MAX_AHEAD = timedelta(days=365)


@dataclass(frozen=True)
class When:
    """A resolved slot: the instant, and the date and time as the user picked them."""

    at: datetime
    local_date: date
    local_time: time
    time_zone: str


def resolve(slot: Slot, now: datetime) -> When:
    """The instant a slot names: 422 for a missing half, an unknown time zone, the past or more than a year out."""
    if slot.scheduled_at is not None:
        zone_name = slot.timezone or "UTC"
        local = slot.scheduled_at.astimezone(_zone(zone_name)) if slot.timezone else slot.scheduled_at
        when = When(slot.scheduled_at, local.date(), local.time().replace(tzinfo=None), zone_name)
    else:
        if slot.scheduled_date is None or slot.scheduled_time is None:
            raise Unprocessable(
                "A scheduled call needs both scheduled_date and scheduled_time",
                code="VALIDATION_ERROR",
                errors=[
                    {
                        "field": "scheduled_date" if slot.scheduled_date is None else "scheduled_time",
                        "message": "Field required",
                    }
                ],
            )
        zone_name = slot.timezone or "UTC"
        naive_time = slot.scheduled_time.replace(tzinfo=None)
        at = datetime.combine(slot.scheduled_date, naive_time, tzinfo=_zone(zone_name))
        when = When(at, slot.scheduled_date, naive_time, zone_name)
    if when.at < now + MIN_LEAD:
        raise Unprocessable("Pick a time at least a minute from now", code="SCHEDULED_IN_PAST")
    if when.at > now + MAX_AHEAD:
        raise Unprocessable("Pick a time within the next year", code="SCHEDULED_TOO_FAR")
    return when


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Unprocessable(
            f"Unknown time zone {name!r}",
            code="VALIDATION_ERROR",
            errors=[{"field": "timezone", "message": "An IANA time zone such as Europe/Paris"}],
        ) from exc

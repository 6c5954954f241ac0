"""Group classes: a creator schedules one, fans take seats, pay once at attendance, watch its live stream, review.

`service` holds the operations the functions call, `queries` every read, `models` the bodies and answers.
lib.streams asks `check_viewer` before admitting anyone to a stream (a class's stream admits enrolled fans only);
lib.calendar lists classes as calendar events and cancels them through `cancel` and `leave`.
"""

from lib.classes.service import (
    LEDGER_KIND,
    cancel,
    check_viewer,
    class_reviews,
    create,
    enrolled_of,
    hosting_of,
    join,
    leave,
    listing,
    mark_attendance,
    my_enrolled,
    review,
    start_stream,
)

__all__ = [
    "LEDGER_KIND",
    "cancel",
    "check_viewer",
    "class_reviews",
    "create",
    "enrolled_of",
    "hosting_of",
    "join",
    "leave",
    "listing",
    "mark_attendance",
    "my_enrolled",
    "review",
    "start_stream",
]

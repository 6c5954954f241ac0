"""POST /api/telemetry: call-page beacons (VideoCall.js `fireBeacon`): logged, never stored; always 204."""

from fastapi import Request, Response

from lib import telemetry
from lib.http import create_app

app = create_app(rate_limit=None)  # limited per IP inside, where going over drops the beacon instead of a 429


@app.post("/api/telemetry", status_code=204, response_class=Response)
async def telemetry_beacon(request: Request) -> Response:
    """Any body (text/plain from sendBeacon, application/json from its fallbacks, or none); no auth.

    Logs {event, reason, durationS, visibilityState, channel, clientTs}; over 4 KiB, malformed or over the per-IP
    limit it is dropped (and the drop logged). Always 204: a beacon's answer is never read nor retried."""
    await telemetry.receive(request)
    return Response(status_code=204)

"""GET|POST /api/creators/rates: my call rates and message prices in whole tokens (creators only)."""

from typing import Any

from lib import creators
from lib.auth import CreatorUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/creators/rates")
def get_rates(user: CreatorUser, conn: DbConn) -> dict[str, Any]:
    """{rates: {videoCall, voiceCall, message, stream, textMessage, imageMessage, audioMessage, videoMessage}}."""
    return creators.get_rates(conn, user)


@app.post("/api/creators/rates")
def set_rates(body: creators.RatesUpdate, user: CreatorUser, conn: DbConn) -> dict[str, Any]:
    """{rates, ignored}: calls 1-10,000 tokens/min, messages and streams 0-10,000 (0 = free)."""
    return creators.set_rates(conn, user, body.rates)

"""GET /api/tokens/transactions: my ledger, newest first."""

from typing import Annotated

from fastapi import Query

from lib import ledger
from lib.auth import CurrentUser
from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/tokens/transactions", response_model=ledger.TransactionPage)
def list_transactions(
    user: CurrentUser,
    conn: DbConn,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ledger.TransactionPage:
    """One page of my own ledger rows."""
    return ledger.transactions(conn, user.id, limit=limit, offset=offset)

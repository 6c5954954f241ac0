"""GET /api/bench/floor: the floor of a request, create_app() and SELECT 1 through the same pool (bench only)."""

from lib.db import DbConn
from lib.http import create_app

app = create_app()


@app.get("/api/bench/floor")
def floor(conn: DbConn) -> dict[str, int]:
    """{"one": 1}: the envelope, the rate limit, one pooled transaction, nothing else."""
    row = conn.execute("SELECT 1 AS one").fetchone()
    return {"one": int(row["one"]) if row else 0}

"""A bare FastAPI app with one route: the cold-start yardstick for every api/ function (bench only)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/bench/bare")
def bare() -> dict[str, bool]:
    """{"ok": true}."""
    return {"ok": True}

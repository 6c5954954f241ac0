"""GET /api/health (and /api/healthz): database and Redis checks, no auth."""

from fastapi.responses import JSONResponse

from lib import health
from lib.http import create_app

app = create_app(rate_limit=None)


@app.get("/api/health", response_model=health.Health)
@app.get("/api/healthz", response_model=health.Health, include_in_schema=False)
def get_health() -> JSONResponse:
    """Healthy, degraded (Redis down) or 503 when the database is down."""
    result = health.check()
    return JSONResponse(result.model_dump(), status_code=503 if result.checks["database"] == "down" else 200)

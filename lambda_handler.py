"""AWS Lambda entry for teams that deploy there: every api/ function behind one Mangum handler, routed as on Vercel.

Nothing on the Vercel path imports this file (.vercelignore and vercel.json's excludeFiles leave it out). A Lambda
package carries api/, lib/ (the route table is lib/routing), vercel.json and requirements.txt's packages (mangum
included). Behind an API Gateway HTTP API or a Function URL. Crons are off: have a scheduler GET each vercel.json
cron path with `Authorization: Bearer <CRON_SECRET>`. Every response, the router's own 404s and 500s included,
carries lib/http's security headers and X-Request-ID.
"""

from __future__ import annotations

from pathlib import Path

from mangum import Mangum

from lib.routing import Router

ROOT = Path(__file__).resolve().parent

# lifespan="off": the router starts each function's own lifespan on its first request, as Vercel does.
# Problem bodies are text too (Mangum would base64 them otherwise).
lambda_handler = Mangum(
    Router(ROOT),
    lifespan="off",
    text_mime_types=["text/", "application/json", "application/problem+json"],
)

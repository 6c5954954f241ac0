"""One route table, built from `api/` itself: the Lambda entry, the local server (localdev/vercel_router.py) and
the OpenAPI document (lib/routing/openapi.py, imported on demand) all derive from the function files here.

`table`: the files, `[param]` routes, `vercel.json` rewrites and loading a file as Vercel does (standard library
only); `router`: one ASGI app over them all, with each function's lifespan and the functions' envelope.
"""

from lib.routing.router import Resolution, Router
from lib.routing.table import (
    ROOT,
    ASGIApp,
    FunctionLoadError,
    Rewrite,
    Route,
    RouteConfigError,
    app_of,
    function_files,
    load_function,
    module_name_for,
    read_vercel_json,
    rewrites,
    routes,
)

__all__ = [
    "ROOT",
    "ASGIApp",
    "FunctionLoadError",
    "Resolution",
    "Rewrite",
    "Route",
    "RouteConfigError",
    "Router",
    "app_of",
    "function_files",
    "load_function",
    "module_name_for",
    "read_vercel_json",
    "rewrites",
    "routes",
]

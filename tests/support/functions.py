"""Load api/ functions by path, the way Vercel does, and call them in-process."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
API_DIR = ROOT / "api"


@cache
def load_function(relpath: str) -> Any:
    """The ASGI `app` of api/<relpath> (e.g. "calls/[call_id]/accept.py")."""
    path = API_DIR / relpath
    name = "digis_fn_" + relpath.replace("/", "_").replace("-", "_").replace("[", "").replace(
        "]", ""
    ).removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.app


def client(relpath: str, **kwargs: Any) -> TestClient:
    """A TestClient on one function (raise_server_exceptions off: a 500 is an answer to assert on)."""
    kwargs.setdefault("raise_server_exceptions", False)
    return TestClient(load_function(relpath), **kwargs)


def all_function_files() -> list[str]:
    """Every api/ function file, relative to api/."""
    return sorted(str(p.relative_to(API_DIR)) for p in API_DIR.rglob("*.py") if "__pycache__" not in p.parts)

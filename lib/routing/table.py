"""The route table Vercel builds from `api/` and `vercel.json`, and loading a function file the way Vercel does.

Mirrors `.vercel/output/config.json` of `vercel build` (checked by scripts/vercel-build against vercel@58.10.0):
every `api/**.py` file is a function (names starting with `_` or `.` are not); a static file answers its own path;
the `vercel.json` rewrites apply in order, each followed by a filesystem check on its destination; then the
`[param]` routes in Vercel's order (more segments first, then fewer trailing `[param]`s, then by name).
Standard library only, so the Lambda entry and tools load it cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROOT = Path(__file__).resolve().parents[2]


class RouteConfigError(ValueError):
    """The api/ tree or vercel.json is something Vercel's build would refuse (or this table can't emulate)."""


class FunctionLoadError(RuntimeError):
    """A function file failed to import or exports no ASGI `app`."""


@dataclass(frozen=True)
class Route:
    """One function: its file (relative to the root), its URL template and its `[param]` names."""

    file: Path
    pattern: str
    params: tuple[str, ...]
    regex: re.Pattern[str]

    @property
    def dynamic(self) -> bool:
        """True when a path segment is a `[param]`."""
        return bool(self.params)

    @property
    def destination(self) -> str:
        """The path Vercel rewrites a dynamic request to (the function's own file path, without `.py`)."""
        return "/" + self.file.with_suffix("").as_posix()

    def url(self, **values: str) -> str:
        """The concrete path for these parameter values (`/api/calls/<id>/accept`)."""
        if missing := set(self.params) - set(values):
            raise KeyError(f"{self.file}: no value for {', '.join(sorted(missing))}")
        return re.sub(r"\{([^}]+)\}", lambda m: quote(values[m.group(1)], safe=""), self.pattern)


def _param(segment: str) -> str | None:
    name = segment.removesuffix(".py")
    return name[1:-1] if len(name) > 2 and name[0] == "[" and name[-1] == "]" else None


def function_files(root: Path = ROOT) -> list[Path]:
    """Every `api/**.py` file Vercel turns into a function, relative to `root`, sorted."""
    api = root / "api"
    found = [p.relative_to(root) for p in api.rglob("*.py")] if api.is_dir() else []
    found = [p for p in found if not any(part.startswith(("_", ".")) for part in p.parts[1:])]
    return sorted(found, key=lambda p: p.as_posix())


def _route_for(file: Path) -> Route:
    parts = file.with_suffix("").parts
    params, template, src = [], [], []
    for i, part in enumerate(parts):
        name, last = _param(part), i == len(parts) - 1
        if name is not None:
            params.append(name)
            template.append("{" + name + "}")
            src.append("([^/]+)")
        elif last and part == "index":
            src.append("(?:/|/index|/index\\.py)?")
        else:
            template.append(part)
            # Vercel's dynamic routes also accept `name/` and `name.py` for a static file name.
            p = re.escape(part)
            src.append(f"({p}/|{p}|{p}\\.py)" if last else p)
    joined = "/".join(src[:-1]) + src[-1] if parts[-1] == "index" else "/".join(src)
    regex = re.compile("^/" + joined + "$")
    return Route(file=file, pattern="/" + "/".join(template), params=tuple(params), regex=regex)


def _vercel_order(file: Path) -> tuple[int, int, str]:
    # Vercel's sortFilesBySegmentCount: more segments first, then fewer trailing [param]s, then by name.
    trailing = 0
    for part in file.parts:
        trailing = trailing + 1 if _param(part) is not None else 0
    return (-len(file.parts), trailing, file.as_posix().lower())


def _clash(a: Path, b: Path) -> bool:
    # Vercel's partiallyMatches: the same position holds [param]s of different names.
    for sa, sb in zip(a.parts, b.parts, strict=False):
        na, nb = _param(sa), _param(sb)
        if sa != sb and (na is None or nb is None):
            return False
        if na != nb:
            return True
    return False


def routes(root: Path = ROOT) -> list[Route]:
    """Every function under `root/api`: static ones first, then dynamic ones in the order Vercel tries them."""
    files = function_files(root)
    errors: list[str] = []
    shapes: dict[str, Path] = {}
    for i, file in enumerate(files):
        names = [n for n in map(_param, file.parts) if n is not None]
        if len(names) != len(set(names)):
            errors.append(f"{file}: a [param] name occurs more than once in the path")
        shape = "/".join("1" if _param(p) else p for p in file.with_suffix("").parts)
        if shape in shapes:
            errors.append(f"these files serve the same path: {shapes[shape]}, {file}")
        shapes[shape] = file
        errors += [
            f"{file} and {b} name the same path segment differently"
            for b in files[i + 1 :]
            if _clash(file, b)
        ]
    if errors:
        raise RouteConfigError("vercel build would refuse this api/ tree:\n  " + "\n  ".join(errors))
    static = [_route_for(f) for f in files if not any(map(_param, f.parts))]
    dynamic = sorted((f for f in files if any(map(_param, f.parts))), key=_vercel_order)
    return static + [_route_for(f) for f in dynamic]


# --- vercel.json ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)([*+?]?)$")
_DEST_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)[*+?]?")
_ONE = "[^/]+?"
_MODIFIERS = {
    "": "/(?P<{n}>{one})",
    "?": "(?:/(?P<{n}>{one}))?",
    "*": "(?:/(?P<{n}>{one}(?:/{one})*))?",
    "+": "/(?P<{n}>{one}(?:/{one})*)",
}


@dataclass(frozen=True)
class Rewrite:
    """A `vercel.json` rewrite in path-to-regexp's segment syntax (`:name`, `:name?`, `:name*`, `:name+`)."""

    source: str
    destination: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, source: str, destination: str) -> Rewrite:
        """Compile one rewrite; anything beyond whole-segment parameters is refused, not guessed."""
        if not source.startswith("/") or not destination.startswith("/"):
            raise RouteConfigError(
                f"rewrite {source} -> {destination}: only same-deployment paths are emulated"
            )
        if any(ch in source for ch in "()[]{}"):
            raise RouteConfigError(f"rewrite source {source}: regex groups are not emulated")
        pieces = []
        for segment in source.strip("/").split("/") if source != "/" else []:
            if (m := _TOKEN.match(segment)) is not None:
                pieces.append(_MODIFIERS[m.group(2)].format(n=m.group(1), one=_ONE))
            elif ":" in segment or "*" in segment:
                raise RouteConfigError(f"rewrite source {source}: only whole-segment :params are emulated")
            else:
                pieces.append("/" + re.escape(segment))
        return cls(source, destination, re.compile("^" + ("".join(pieces) or "/") + "$"))

    def apply(self, path: str) -> tuple[str, list[tuple[str, str]]] | None:
        """The destination path and extra query pairs when `path` matches, else None."""
        m = self.regex.match(path)
        if m is None:
            return None
        values = {k: v or "" for k, v in m.groupdict().items()}
        used: set[str] = set()

        def fill(match: re.Match[str]) -> str:
            used.add(match.group(1))
            return values.get(match.group(1), "")

        dest_path, _, dest_query = self.destination.partition("?")
        new_path = re.sub(r"/{2,}", "/", _DEST_PARAM.sub(fill, dest_path)) or "/"
        pairs = [
            (k, _DEST_PARAM.sub(fill, v))
            for k, _, v in (p.partition("=") for p in dest_query.split("&") if p)
        ]
        # Vercel passes source params the destination does not use as query parameters.
        return new_path, pairs + [
            (k, v) for k, v in values.items() if k not in used and m.group(k) is not None
        ]


def read_vercel_json(root: Path = ROOT) -> dict[str, Any]:
    """The parsed `vercel.json` (empty when there is none)."""
    path = root / "vercel.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if not isinstance(data, dict):
        raise RouteConfigError("vercel.json must be an object")
    return data


def rewrites(config: dict[str, Any]) -> list[Rewrite]:
    """The rewrites of a parsed vercel.json, compiled, in order."""
    if unsupported := [
        k for k in ("routes", "redirects", "headers", "cleanUrls", "trailingSlash") if k in config
    ]:
        raise RouteConfigError(f"vercel.json keys not emulated by lib.routing: {', '.join(unsupported)}")
    out = []
    for rule in config.get("rewrites", []):
        if "has" in rule or "missing" in rule:
            raise RouteConfigError(
                f"rewrite {rule.get('source')}: `has`/`missing` conditions are not emulated"
            )
        out.append(Rewrite.parse(rule["source"], rule["destination"]))
    return out


# --- loading a function ---------------------------------------------------------------------------------------


def module_name_for(file: Path, root: Path = ROOT) -> str:
    """A unique, importable-looking module name for a function file (names may hold `-` and `[ ]`)."""
    stem = re.sub(r"[^0-9A-Za-z_]", "_", file.with_suffix("").as_posix())
    digest = hashlib.sha1(str(root.resolve() / file).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"_vercel_fn_{stem}_{digest}"


def load_function(path: Path, *, root: Path = ROOT, module_name: str | None = None) -> ModuleType:
    """Import one function file by path (never as a package) with `root` importable, as Vercel does."""
    if (root_str := str(root.resolve())) not in sys.path:
        sys.path.insert(0, root_str)
    rel = path.resolve().relative_to(root.resolve()) if path.is_absolute() else path
    name = module_name or module_name_for(rel, root)
    spec = importlib.util.spec_from_file_location(name, root / rel)
    if spec is None or spec.loader is None:
        raise FunctionLoadError(f"{rel}: not importable")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic and dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def app_of(module: ModuleType, file: Path) -> ASGIApp:
    """The module's top-level ASGI `app`, or FunctionLoadError."""
    app = getattr(module, "app", None)
    if app is None or not callable(app):
        raise FunctionLoadError(f"{file} exports no ASGI `app`")
    return app

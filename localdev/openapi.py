"""The merged OpenAPI document (built by lib/routing/openapi.py) as a self-contained HTML page, and its CLI.

The local router serves `openapi_document()` as /api/openapi.json and `docs_html()` as /api/docs.
CLI: `python -m localdev.openapi [--out FILE] [--html FILE]` (scripts/openapi).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from lib.routing.openapi import SCHEMA_REF, OpenApiBuildError, openapi_document
from lib.routing.table import ROOT

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 24px;color:#1d2430}
section{border:1px solid #dde1e7;border-radius:6px;margin:10px 0;padding:8px 12px}
.m{font-weight:700;text-transform:uppercase;margin-right:8px}.lock{background:#fff3cd;margin-left:8px}
pre{background:#f0f2f5;padding:8px;overflow:auto}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _json(value: object) -> str:
    """Pretty JSON, escaped, with each schema ref linked to its component's anchor."""
    link = re.escape(_e(json.dumps(SCHEMA_REF))[:-6]) + r"([A-Za-z0-9._-]+)&quot;"
    text = _e(json.dumps(value, indent=2))
    return re.sub(
        link, lambda m: f'&quot;<a href="#schema-{m.group(1)}">{SCHEMA_REF}{m.group(1)}</a>&quot;', text
    )


def _operation(path: str, method: str, spec: dict[str, Any]) -> str:
    """One operation: method, path, its security schemes, summary, then its whole spec (refs linked)."""
    locks = "".join(f'<span class="lock">{_e(s)}</span>' for r in spec.get("security", []) for s in r)
    rest = {k: v for k, v in spec.items() if k not in ("summary", "operationId", "security")}
    return (
        f'<section id="op-{_e(spec.get("operationId", method + path))}"><div><span class="m">{method}</span>'
        f"<b>{_e(path)}</b>{locks}</div><p>{_e(spec.get('summary', ''))}</p><pre>{_json(rest)}</pre></section>"
    )


def render_html(document: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external assets) listing every operation and schema."""
    info, components = document.get("info", {}), document.get("components", {})
    by_tag: dict[str, list[str]] = {}
    for path, item in document.get("paths", {}).items():
        for method, spec in item.items():
            by_tag.setdefault((spec.get("tags") or ["other"])[0], []).append(_operation(path, method, spec))
    title = f"{_e(info.get('title', 'API'))} {_e(info.get('version', ''))}"
    out = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
    ]
    out += [
        f"<h1>{title}</h1><pre>{_e(info.get('description', ''))}</pre>",
        "<nav>" + " ".join(f'<a href="#tag-{_e(t)}">{_e(t)}</a>' for t in sorted(by_tag)) + "</nav>",
    ]
    for tag in sorted(by_tag):
        out += [f'<h2 id="tag-{_e(tag)}">{_e(tag)}</h2>', *by_tag[tag]]
    out.append('<h2 id="schemas">Schemas</h2>')
    schemas = components.get("schemas", {}).items()
    out += [f'<h3 id="schema-{_e(n)}">{_e(n)}</h3><pre>{_json(schema)}</pre>' for n, schema in schemas]
    out.append('<h2 id="security">Security schemes</h2>')
    out += [
        f"<h3>{_e(n)}</h3><pre>{_e(json.dumps(s, indent=2))}</pre>"
        for n, s in components.get("securitySchemes", {}).items()
    ]
    return "\n".join([*out, "</body></html>"]) + "\n"


def docs_html(root: Path = ROOT) -> str:
    """The HTML page for the current `root/api` (see `render_html`)."""
    return render_html(openapi_document(root))


def main(argv: list[str] | None = None) -> int:
    """Write the merged document to stdout (or --out) and, with --html, the docs page."""
    parser = argparse.ArgumentParser(prog="scripts/openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write openapi.json here instead of stdout")
    parser.add_argument("--html", type=Path, help="also write the HTML docs page here")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root holding api/")
    args = parser.parse_args(argv)
    # Building the document reads settings but needs no real secrets: development defaults unless told otherwise.
    os.environ.setdefault("ENVIRONMENT", "development")
    try:
        document = openapi_document(args.root)
    except OpenApiBuildError as exc:
        print(f"openapi: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if args.html:
        args.html.write_text(render_html(document))
    ops = sum(len(item) for item in document["paths"].values())
    print(f"openapi: {ops} operations, {len(document['components']['schemas'])} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""POST /admin/export/{format} as the dashboard sends it: a well-formed, bounded, injection-safe file, audited."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from lib.admin import exports
from tests.admin.helpers import audit_rows
from tests.conftest import MakeUser
from tests.conftest import TestUser as Person
from tests.support import functions

EXPORT = "admin/export/[export_format].py"
FILTERS = {"dateRange": "week", "location": "all", "specialty": "all", "status": "all", "search": ""}


def _export(boss: Person, fmt: str, body: dict[str, Any]) -> Any:
    return functions.client(EXPORT).post(f"/api/v1/admin/export/{fmt}", headers=boss.headers, json=body)


def _apply(user: Person, bio: str) -> str:
    r = functions.client("users/apply-creator.py").post(
        "/api/users/apply-creator", headers=user.headers, json={"bio": bio, "category": "music"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["application"]["id"])


HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "-cmd|' /C calc'!A0",
    'plain, with "quotes"\nand a line',
]


def test_csv_export_is_well_formed_and_defuses_formulas(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    ids = [_apply(make_user(), bio) for bio in HOSTILE]
    r = _export(boss, "csv", {"type": "overview", "filters": FILTERS, "selection": []})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert (
        r.headers["content-disposition"].startswith("attachment;")
        and ".csv" in r.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert len(rows) == len(HOSTILE) and set(rows[0]) == set(exports.APPLICATION_COLUMNS)
    assert {row["id"] for row in rows} == set(ids)
    bios = {row["bio"] for row in rows}
    assert bios == {"'" + b for b in HOSTILE[:5]} | {HOSTILE[5]}, (
        "formula cells start with a quote, others intact"
    )
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert row["totalSpentCents"] == "0" and row["status"] == "pending"
    (audit,) = audit_rows("export")
    assert audit["admin_id"] == boss.id
    assert audit["details"] == {
        "format": "csv",
        "type": "overview",
        "rows": 6,
        "truncated": False,
        "selection": 0,
    }


def test_selection_and_tab_narrow_the_export_and_json_works(make_user: MakeUser) -> None:
    boss = make_user(role="admin")
    first, _second = _apply(make_user(), "one"), _apply(make_user(), "two")
    r = _export(boss, "json", {"type": "pending", "filters": FILTERS, "selection": [first]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = json.loads(r.content)
    assert [row["id"] for row in body["rows"]] == [first] and body["truncated"] is False
    assert "T" in body["rows"][0]["submittedAt"], "ISO 8601, as the page's dates are"
    assert (
        _export(boss, "json", {"type": "approved", "filters": FILTERS, "selection": []}).json()["rows"] == []
    )
    users = _export(boss, "csv", {"type": "users", "filters": FILTERS, "selection": []})
    assert len(list(csv.DictReader(io.StringIO(users.content.decode())))) == 3


def test_exports_are_bounded(make_user: MakeUser, monkeypatch: pytest.MonkeyPatch) -> None:
    boss = make_user(role="admin")
    for i in range(3):
        _apply(make_user(), f"bio {i}")
    monkeypatch.setattr(exports, "EXPORT_MAX_ROWS", 2)
    r = _export(boss, "csv", {"type": "overview", "filters": FILTERS, "selection": []})
    assert r.status_code == 200 and r.headers["x-export-truncated"] == "true"
    assert len(list(csv.DictReader(io.StringIO(r.content.decode())))) == 2


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        ("xlsx", {"type": "overview"}),
        ("csv", {"type": "moderation", "filters": FILTERS, "selection": []}),
        ("csv", {"type": "overview", "selection": ["not-a-uuid"]}),
        ("csv", {"type": "overview", "filters": {"dateRange": "decade"}}),
    ],
)
def test_bad_exports_are_422_problems(make_user: MakeUser, fmt: str, body: dict[str, Any]) -> None:
    boss = make_user(role="admin")
    r = _export(boss, fmt, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert audit_rows() == []


def test_csv_cell_rules() -> None:
    assert exports.csv_cell(-5) == "-5" and exports.csv_cell(True) == "true" and exports.csv_cell(None) == ""
    assert (
        exports.csv_cell("-5") == "'-5"
        and exports.csv_cell("=1") == "'=1"
        and exports.csv_cell("a=1") == "a=1"
    )
    assert exports.csv_cell("\tcmd") == "'\tcmd" and exports.csv_cell("\r=1") == "'\r=1"
    assert exports.csv_cell({"k": "=x"}) == '{"k": "=x"}'

"""Every documented operation against the real functions (router over HTTP, test database, a real user's token).

Checks: no 5xx (`not_a_server_error`), status codes and content types documented, bodies valid against the
schema (`response_schema_conformance`), and operations marked as needing auth really refuse without it
(`ignored_auth`). Bounded and deterministic: DIGIS_CONTRACT_EXAMPLES (default 10) examples per operation,
derandomized; test_edge_inputs.py adds fixed hostile values. scripts/fuzz runs this test longer, with the coverage
phase (the DIGIS_CONTRACT_* variables below).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig

from lib.routing import ROOT, function_files
from lib.routing.openapi import openapi_document
from tests.contract import stack as contract_stack

EXAMPLES = int(os.environ.get("DIGIS_CONTRACT_EXAMPLES", "10"))
SEED = int(os.environ.get("DIGIS_CONTRACT_SEED", "20240601"))
MODE = os.environ.get("DIGIS_CONTRACT_MODE", "all")  # positive | negative | all
# The coverage phase (boundary values, missing fields, unexpected methods) doubles the run time: scripts/fuzz runs it.
COVERAGE = os.environ.get("DIGIS_CONTRACT_COVERAGE", "0") == "1"
# Derandomized (CI) ignores the seed; scripts/fuzz turns it off so each seed explores differently, reproducibly.
DETERMINISTIC = os.environ.get("DIGIS_CONTRACT_DETERMINISTIC", "1") == "1"
PATHS = os.environ.get("DIGIS_CONTRACT_PATHS")  # a regex on the path: only those operations
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.ignored_auth,
]

DOCUMENT = openapi_document()
_loaded = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": EXAMPLES,
                "deterministic": DETERMINISTIC,
                "database": "none",
                "mode": MODE,
            },
            "phases": {"coverage": {"enabled": COVERAGE}},
            "request-timeout": 30,
        }
    ),
)
schema = _loaded.include(path_regex=PATHS) if PATHS else _loaded


@schema.auth(refresh_interval=None, retry_on=[])
class StackAuth:
    """Each operation's credentials: a placeholder per scheme, swapped for the real one just before the call.

    Schemathesis builds its coverage cases (auth included) at collection time, before the stack runs and the
    token exists, so the real secret goes in at call time (`contract_stack.authorize`).
    """

    def get(self, case: Any, ctx: Any) -> list[str]:
        """The security schemes this operation asks for."""
        return contract_stack.schemes_of(case.operation.definition.raw)

    def set(self, case: Any, data: list[str], ctx: Any) -> None:
        """A placeholder credential in each scheme's header."""
        case.headers = {**(case.headers or {}), **contract_stack.placeholders(data)}


@schema.parametrize()
# One seeded user per operation, shared by its examples on purpose (state builds up as a client's would).
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_operation_honours_its_contract(case: Any, api: contract_stack.Stack, user_token: str) -> None:
    """No 5xx, documented status and content type, a body matching the schema, auth enforced where marked."""
    api.authorize(case, user_token)
    contract_stack.reset_rate_limits()
    case.call_and_validate(base_url=api.url, checks=CHECKS)


def test_every_function_is_in_the_document() -> None:
    """Each api/ function contributes at least one operation (a function missing here is never tested)."""
    files = {spec["x-vercel-function"] for item in DOCUMENT["paths"].values() for spec in item.values()}
    missing = sorted(p.as_posix() for p in function_files(ROOT) if p.as_posix() not in files)
    assert not missing, f"functions with no documented operation: {missing}"

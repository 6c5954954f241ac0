"""Operations the contract tests currently fail, with why: xfail(strict), so a fix shows up as a failure to remove.

Remove an entry once its function is fixed. Found by tests/contract (CI) and scripts/fuzz; reproductions are in the
reason text. Shared causes: PostgreSQL text cannot hold a NUL byte (psycopg.DataError -> 500) and an `offset`
with no upper bound overflows bigint (NumericValueOutOfRange -> 500); either should be a 422 from validation.
"""

from __future__ import annotations

# Schemathesis labels ("METHOD /api/path") of tests/contract/test_schemathesis.py.
KNOWN_FAILURES: dict[str, str] = {}

_NUL = "NUL byte reaches PostgreSQL text (psycopg.DataError) -> 500 instead of 422"
_BIGINT = "offset has no maximum: 2**63 overflows bigint (NumericValueOutOfRange) -> 500 instead of 422"

# Probe ids of tests/contract/test_edge_inputs.py ("METHOD /api/path where:name=value").
KNOWN_EDGE_FAILURES: dict[str, str] = {}

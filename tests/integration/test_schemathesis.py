"""Every operation in /openapi.json, fuzzed in-process: never a 5xx, every answer as documented.

The spec states every constraint a schema can state (lengths, ranges, enums, patterns, no
NUL). Rules no schema can state, such as a phone being a real number or ends_at following
starts_at, may still refuse schema-valid data; a 422 on any other field fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy import Engine

from services.api.app import create_app
from services.api.core import webhooks
from shared.config import Settings
from shared.db.engine import make_engine
from tests.conftest import TEST_DATABASE_URL, WRITE_TOKEN

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
# Per operation: small, so the whole run stays well under a minute on two cores.
MAX_EXAMPLES = 15
# Fields whose rules are semantic: phone validity, the time range, template variables and
# syntax, a subject (and only e-mail has HTML), a window whose ends differ; a stored template
# of the channel (text or template, not both), a notification's address fitting its channel
# (exactly one, a stored client), values for every variable, a future expiry, one key per item;
# a webhook URL whose host resolves to an allowed address.
SEMANTIC_FIELDS = frozenset(
    {"phone", "starts_at", "ends_at", "text", "subject", "html", "send_window", "template",
     "to", "variables", "expires_at", "idempotency_key", "url"}
)  # fmt: skip
ACCEPTED = frozenset({401, 403, 404, 409, 429})
# The import answers 200 with a per-row report: a bad record is a rejected row, not a 4xx.
ROW_REPORTING = frozenset({"POST /api/v1/clients/import"})

# Built at collection, because parametrize needs the spec then; the engine connects lazily,
# and the `engine` fixture migrates and empties that database before each operation's run.
APP = create_app(
    Settings.from_env(
        {"HERALD_DATABASE_URL": TEST_DATABASE_URL, "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write"},
        env_file=Path("/nonexistent"),
    ),
    make_engine(TEST_DATABASE_URL),
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)


@pytest.fixture(autouse=True)
def empty_database(engine: Engine) -> None:
    """Run each operation against the migrated, emptied test database."""


@pytest.fixture(autouse=True)
def no_name_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated webhook hosts resolve to nothing: no lookup leaves the machine."""
    monkeypatch.setattr(webhooks, "resolve_host", lambda host: [])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_answers_as_documented(case: schemathesis.Case) -> None:
    excluded: list[CheckFunction] = [positive_data_acceptance]
    if case.operation.label in ROW_REPORTING:
        excluded.append(negative_data_rejection)
    case.call_and_validate(
        headers=AUTH, excluded_checks=excluded, additional_checks=[valid_data_is_accepted]
    )


def valid_data_is_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """positive_data_acceptance, except a 422 that names only semantic body fields."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in ACCEPTED:
        return None
    if case.operation.label in ROW_REPORTING and case.media_type == "text/csv":
        return None  # a bare string in the spec; the CSV layout is described in words
    errors = response.json().get("errors", {}) if status == 422 else {}
    if set(errors) == {"json"} and all(
        semantic(name, reasons) for name, reasons in errors["json"].items()
    ):
        return None
    raise AssertionError(f"schema-valid request refused with {status}: {response.text[:500]}")


def semantic(field: str, reasons: Any) -> bool:
    """A refusal no schema could have announced; OpenAPI 3.0 cannot constrain map keys."""
    if field == "attributes" and isinstance(reasons, dict):
        return all(set(inner) == {"key"} for inner in reasons.values())
    return field in SEMANTIC_FIELDS

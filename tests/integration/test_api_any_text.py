"""Any text in every string of every write, as /openapi.json lists them: never a 5xx.

Each string the spec describes (body fields at any depth, list items, map keys and values,
CSV cells and header, query and path parameters) gets arbitrary Unicode, lone surrogates
and NUL included, inside an otherwise valid request. Text PostgreSQL cannot store must be
a 422 (or a refused import row) naming the field; a 2xx must read back as it was sent.
Only the valid requests around the strings are written by hand, one per operation, and a
test fails when a write operation with a body has none.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from sqlalchemy import Engine

from services.api.app import create_app
from services.api.auth import WRITE_METHODS
from services.api.core.importer import CSV_COLUMNS
from shared.config import Settings
from shared.db.engine import make_engine
from shared.domain.text import storable_text_error
from tests.conftest import RECEIPTS_TOKEN, TEST_DATABASE_URL, WRITE_TOKEN
from tests.support.strategies import any_text

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
# Per string: small, so the whole module stays under a minute on two cores.
MAX_EXAMPLES = 12
ITEM, KEY, VALUE = "[]", "{key}", "{value}"
HEADER = "{header}"
# Fields the API stores in a normal form of its own (E.164, times) rather than as sent.
NORMALISED = frozenset({"phone", "send_window", "starts_at", "ends_at"})
# Rendered and addressed when accepted: a notification reads back as the result, not the request.
RENDERED = frozenset({"POST /api/v1/notifications"})
TEMPLATE_NAME = "greeting"
LATER = "2031-01-01T00:00:00+00:00"
MUCH_LATER = "2031-01-02T00:00:00+00:00"


def client_body(phone: str) -> dict[str, Any]:
    return {
        "phone": phone,
        "operator_code": "912",
        "tags": ["vip"],
        "timezone": "Europe/Moscow",
        "email": "ann@example.com",
        "attributes": {"first_name": "Ann"},
        "opted_out": [],
    }


def draft_test_body() -> dict[str, Any]:
    """An SMS campaign not stored yet: its test send meets the closed gateway port."""
    body = {**campaign_body(), "channel": "http", "test_address": "+79123456789"}
    del body["subject"], body["html"]
    return body


def campaign_body() -> dict[str, Any]:
    return {
        "name": "Spring sale",
        "channel": "email",
        "text": "Hi {{ phone }}",
        "subject": "Hi",
        "html": "<p>Hi</p>",
        "filter": {"tags": ["vip"], "operator_codes": ["912"]},
        "starts_at": LATER,
        "ends_at": MUCH_LATER,
        "send_window": {"start": "09:00", "end": "21:00"},
        "rate_limit": 10,
    }


@dataclass
class Targets:
    """What the requests address: a client, an e-mail campaign, an http one; fresh phones."""

    client_id: int
    client_phone: str
    email_campaign_id: int
    http_campaign_id: int
    phones: Iterator[str]
    webhook_id: int


WEBHOOK: dict[str, Any] = {
    "url": "http://127.0.0.1:9/hook",
    "events": ["message.sent"],
    "description": "d",
}


# One valid request per write operation with a body: the strings are varied inside it.
BASES: dict[str, Callable[[Targets], Any]] = {
    "POST /api/v1/clients": lambda t: client_body(next(t.phones)),
    "PUT /api/v1/clients/{client_id}": lambda t: client_body(t.client_phone),
    "PATCH /api/v1/clients/{client_id}": lambda t: client_body(t.client_phone),
    "POST /api/v1/clients/import": lambda t: [client_body(next(t.phones))],
    "POST /api/v1/campaigns": lambda t: campaign_body(),
    "POST /api/v1/campaigns/preview": lambda t: campaign_body(),
    "PUT /api/v1/campaigns/{campaign_id}": lambda t: campaign_body(),
    "PATCH /api/v1/campaigns/{campaign_id}": lambda t: campaign_body(),
    "POST /api/v1/campaigns/{campaign_id}/test": lambda t: {"address": "+79123456789"},
    "POST /api/v1/campaigns/preview/test": lambda t: draft_test_body(),
    "POST /unsubscribe/{token}": lambda t: {"List-Unsubscribe": "One-Click"},
    "POST /api/v1/notifications": lambda t: notification_body(),
    "POST /api/v1/templates": lambda t: {**template_body(), "name": f"t-{next(t.phones)[1:]}"},
    "PUT /api/v1/templates/{name}": lambda t: template_body(),
    "POST /api/v1/webhooks": lambda t: dict(WEBHOOK),
    "PATCH /api/v1/webhooks/{webhook_id}": lambda t: dict(WEBHOOK),
    "POST /api/v1/receipts/http": lambda t: {"id": 1, "status": "rejected", "error": "E1"},
    "POST /api/v1/receipts/email": lambda t: {
        "message_id": "<herald-1@example.org>",
        "type": "complaint",
        "error": "spam",
    },
}
# A gateway's credential: the only one the receipt paths take.
RECEIPTS_AUTH = {"Authorization": f"Bearer {RECEIPTS_TOKEN}"}


def notification_body() -> dict[str, Any]:
    return {
        "channel": "email",
        "to": {"email": "ann@example.com"},
        "text": "Hi {{ name }}",
        "subject": "Hi",
        "html": "<p>Hi</p>",
        "variables": {"name": "Ann"},
        "expires_at": MUCH_LATER,
        "send_window": {"start": "09:00", "end": "21:00", "timezone": "UTC"},
    }


def template_body() -> dict[str, Any]:
    return {"channel": "email", "text": "Hi", "subject": "Hi", "html": "<p>Hi</p>"}


def path_values(label: str, targets: Targets) -> dict[str, Any]:
    # Test sends go to the http campaign: the gateway is a closed port, SMTP is not touched.
    campaign_id = targets.http_campaign_id if label.endswith("/test") else targets.email_campaign_id
    return {
        "client_id": targets.client_id,
        "campaign_id": campaign_id,
        "token": "t",
        "name": TEMPLATE_NAME,
        "webhook_id": targets.webhook_id,
    }


# Built at collection, because parametrize needs the spec then; the engine connects lazily.
APP = create_app(
    Settings.from_env(
        {
            "HERALD_DATABASE_URL": TEST_DATABASE_URL,
            "HERALD_API_TOKENS": f"{WRITE_TOKEN}:write",
            "HERALD_WEBHOOK_ALLOW_PRIVATE": "true",
        },
        env_file=Path("/nonexistent"),
    ),
    make_engine(TEST_DATABASE_URL),
)
SPEC = cast(dict[str, Any], APP.test_client().get("/openapi.json").json)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def string_slots(schema: dict[str, Any], at: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The place of every string a value of this schema can hold, as a path into it."""
    schema = resolve(schema)
    if schema.get("readOnly"):
        return
    for part in schema.get("allOf", []) + schema.get("anyOf", []):
        yield from string_slots(part, at)
    # A body that is one item or an array of them: the base request is the single item.
    for part in schema.get("oneOf", [])[:1]:
        yield from string_slots(part, at)
    kind = schema.get("type")
    if kind == "string":
        yield at
    elif kind == "array":
        yield from string_slots(schema["items"], (*at, ITEM))
    for name, field in schema.get("properties", {}).items():
        yield from string_slots(field, (*at, name))
    if isinstance(schema.get("additionalProperties"), dict):
        yield (*at, KEY)  # a JSON object's keys are strings whatever the schema says of them
        yield from string_slots(schema["additionalProperties"], (*at, VALUE))


@dataclass(frozen=True)
class Slot:
    label: str  # "METHOD /path", as in BASES
    where: str  # json | csv | form | query | path
    at: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.label} {self.where}:{'.'.join(self.at)}"


def operations() -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                parameters = item.get("parameters", []) + operation.get("parameters", [])
                yield f"{method.upper()} {path}", operation, parameters


def slots() -> Iterator[Slot]:
    """Every string of every write, and every string query or path parameter of any call."""
    for label, operation, parameters in operations():
        for parameter in parameters:
            if resolve(parameter["schema"]).get("type") == "string":
                yield Slot(label, parameter["in"], (parameter["name"],))
        if label.split()[0] not in WRITE_METHODS:
            continue
        content = operation.get("requestBody", {}).get("content", {})
        for media, body in content.items():
            if media == "application/json":
                yield from (Slot(label, "json", at) for at in string_slots(body["schema"]))
            elif media == "application/x-www-form-urlencoded":
                yield from (Slot(label, "form", at) for at in string_slots(body["schema"]))
            elif media == "text/csv":
                # A column per text field of the JSON records; any other one is an attribute.
                records = string_slots(content["application/json"]["schema"])
                columns = [at[1] for at in records if at[2:] in ((), (ITEM,))]
                for column in [*columns, "nickname", HEADER]:
                    yield Slot(label, "csv", (column,))


SLOTS = list(slots())


def test_every_write_operation_with_a_body_has_a_base_request() -> None:
    with_body = {label for label, op, _ in operations() if "requestBody" in op}

    assert with_body == set(BASES)
    assert {slot.label for slot in SLOTS if slot.where in ("json", "csv", "form")} == with_body


def placed(value: Any, at: tuple[str, ...], text: str) -> Any:
    """The value with the text at the given place; a list or map keeps only that entry."""
    if not at:
        return text
    step, rest = at[0], at[1:]
    if step == ITEM:
        return [placed(value[0] if value else None, rest, text)]
    if step == KEY:
        return {text: next(iter(value.values()), "x")}
    if step == VALUE:
        return {next(iter(value), "k"): placed(next(iter(value.values()), None), rest, text)}
    return {**(value or {}), step: placed((value or {}).get(step), rest, text)}


def quoted(text: str) -> str:
    # A URL carries bytes: a surrogate goes as its (invalid) UTF-8 bytes, percent-escaped.
    return urllib.parse.quote(text, safe="", errors="surrogatepass")


@pytest.fixture
def api(settings: Settings, engine: Engine) -> FlaskClient:
    # A closed port: a test send that gets through fails at once and reaches no real gateway.
    closed = dataclasses.replace(settings, gateway_url="http://127.0.0.1:9")
    return create_app(closed, engine).test_client()


@pytest.fixture
def targets(api: FlaskClient) -> Targets:
    phones = (f"+7912{number:07d}" for number in itertools.count(1))
    client_phone = next(phones)
    client = api.post("/api/v1/clients", json=client_body(client_phone), headers=AUTH)
    email = api.post("/api/v1/campaigns", json=campaign_body(), headers=AUTH)
    http = {**campaign_body(), "channel": "http", "subject": None, "html": None}
    http_campaign = api.post("/api/v1/campaigns", json=http, headers=AUTH)
    template = {**template_body(), "name": TEMPLATE_NAME}
    assert api.post("/api/v1/templates", json=template, headers=AUTH).status_code == 201
    webhook = api.post("/api/v1/webhooks", json=WEBHOOK, headers=AUTH)
    ids = (client.json["id"], email.json["id"], http_campaign.json["id"], webhook.json["id"])
    return Targets(ids[0], client_phone, ids[1], ids[2], phones, ids[3])


@dataclass(frozen=True)
class Sent:
    path: str
    body: Any  # the record the text went into, as the API reads it
    response: Any


def send(api: FlaskClient, slot: Slot, targets: Targets, text: str) -> Sent:
    """The operation's valid request with the text at the slot."""
    method, template = slot.label.split(" ", 1)
    values = path_values(slot.label, targets)
    if slot.where == "path":
        values[slot.at[0]] = quoted(text)
    path = template.format(**values)
    base = BASES[slot.label](targets) if slot.label in BASES else None
    record = placed(base, slot.at, text) if slot.where in ("json", "form") else base
    query = f"?{slot.at[0]}={quoted(text)}" if slot.where == "query" else ""
    kwargs: dict[str, Any] = {}
    if slot.label.endswith("/import"):
        # A second, valid record: refusing the first must not cost it its import.
        assert base is not None and record is not None
        records = [*(record if slot.where == "json" else base), *BASES[slot.label](targets)]
        record = records[0]
        kwargs = {"data": json.dumps(records)}
        if slot.where == "csv":
            kwargs = {"data": csv_body(records, slot.at[0], text), "content_type": "text/csv"}
    elif slot.label.startswith("POST /unsubscribe"):
        assert record is not None
        kwargs = {"data": "&".join(f"{quoted(k)}={quoted(v)}" for k, v in record.items())}
        kwargs["content_type"] = "application/x-www-form-urlencoded"
    elif record is not None:
        kwargs = {"data": json.dumps(record)}
    kwargs.setdefault("content_type", "application/json")
    headers = RECEIPTS_AUTH if "/receipts/" in template else AUTH
    response = api.open(path + query, method=method, headers=headers, **kwargs)
    return Sent(path, json.loads(json.dumps(record)), response)


def csv_body(records: list[dict[str, Any]], column: str, text: str) -> bytes:
    """A header and a row per record, the text in the first row's cell or in the header."""
    rows = []
    for record in records:
        cells = {name: value for name, value in record.items() if name != "attributes"}
        rows.append({**cells, "tags": ";".join(cells["tags"]), "opted_out": "", "nickname": "A"})
    if column == HEADER:
        rows = [{**row, text: "x"} for row in rows]
    else:
        rows[0][column] = text
    out = io.StringIO()
    csv.writer(out).writerows([list(rows[0]), *(list(row.values()) for row in rows)])
    return out.getvalue().encode("utf-8", "surrogatepass")


def arriving(slot: Slot, text: str) -> str:
    """The text as the API reads it."""
    if slot.where in ("json", "form"):
        # JSON escapes a high and a low surrogate alike, whether one character or two.
        return str(json.loads(json.dumps(text)))
    if slot.where in ("query", "path"):
        # Werkzeug reads bytes of a URL that are not UTF-8 as their %XX text.
        return urllib.parse.unquote(quoted(text), errors="replace")
    return text  # CSV: encoded surrogates decode back one by one


def field_of(slot: Slot) -> str:
    """The top-level field holding the slot's text: a refusal names it."""
    field = next(step for step in slot.at if step != ITEM)
    if slot.where == "csv":
        return field if field in CSV_COLUMNS else "attributes"
    return field


def read_back(api: FlaskClient, slot: Slot, sent: Sent) -> Any:
    """The record as stored, when a GET finds it; None when there is nothing to read back."""
    body = sent.response.json
    if slot.label in RENDERED:
        return None
    if slot.label.endswith("/import"):
        if any(error["row"] == 1 for error in body["errors"]):
            return None
        found = api.get("/api/v1/clients?limit=1000", headers=AUTH).json["items"]
        return next(client for client in found if client["phone"] == sent.body["phone"])
    method, template = slot.label.split(" ", 1)
    path = sent.path
    if method == "POST":  # onto a collection: the new item is read from its own path
        depth = template.count("/") + 1
        item = [
            p for p in SPEC["paths"] if p.startswith(f"{template}/{{") and p.count("/") == depth
        ]
        if not item or "id" not in body:
            return None
        template, path = item[0], f"{path}/{body['id']}"
    return api.get(path, headers=AUTH).json if "get" in SPEC["paths"][template] else None


@pytest.mark.parametrize("slot", SLOTS, ids=str)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    # The fixtures' client and campaigns are meant to be shared by the examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=any_text())
@example(text="\ud800")
@example(text="a\x00b")
@example(text="\udc00\ud800")
def test_any_text_is_stored_as_sent_or_refused_naming_its_field(
    api: FlaskClient, targets: Targets, slot: Slot, text: str
) -> None:
    sent = send(api, slot, targets, text)

    status, body = sent.response.status_code, sent.response.json
    assert status < 500, (str(slot), text, sent.response.get_data()[:300])
    arrives_unstorable = storable_text_error(arriving(slot, text)) is not None
    if arrives_unstorable and slot.where in ("json", "query") and "/import" not in slot.label:
        assert status == 422 and field_of(slot) in body["errors"][slot.where], body
    elif arrives_unstorable and slot.at == (HEADER,):
        assert status == 422 and "column" in body["message"], body
    elif arrives_unstorable and slot.where in ("json", "csv"):
        assert status == 200 and body["created"] == 1, body
        assert [field_of(slot)] == list(body["errors"][0]["errors"]), body
    elif 200 <= status < 300 and slot.where == "json" and field_of(slot) not in NORMALISED:
        stored = read_back(api, slot, sent)
        if stored is not None:
            assert stored[field_of(slot)] == sent.body[field_of(slot)], (str(slot), text)

"""Template use cases: create, read, replace, delete, list; and copying one into a campaign."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping

from shared.db.queries import templates as queries
from shared.domain.campaigns import Reasons
from shared.domain.templates import TEMPLATE_NAME
from shared.errors import Conflict, InvalidInput, NotFound

CONTENT_COLUMNS = ("text", "subject", "html")


def not_found(name: str) -> NotFound:
    return NotFound(f"template {name!r} does not exist")


def named(name: str) -> str:
    """The name, when it could name a template (a path may carry anything, NUL included)."""
    if not TEMPLATE_NAME.fullmatch(name):
        raise not_found(name)
    return name


def create_template(engine: Engine, values: Mapping[str, Any]) -> RowMapping:
    """Store a new template; Conflict when the name is taken."""
    with engine.begin() as conn:
        row = queries.insert_template(conn, values)
    if row is None:
        name = values["name"]
        raise Conflict(
            f"a template named {name!r} already exists", {"name": [f"{name} is already taken"]}
        )
    return row


def get_template(engine: Engine, name: str) -> RowMapping:
    with engine.connect() as conn:
        row = queries.get_template(conn, named(name))
    if row is None:
        raise not_found(name)
    return row


def replace_template(engine: Engine, name: str, values: Mapping[str, Any]) -> RowMapping:
    """Replace every field; what campaigns and notifications copied earlier stays as it was."""
    with engine.begin() as conn:
        row = queries.replace_template(conn, named(name), {"subject": None, "html": None, **values})
    if row is None:
        raise not_found(name)
    return row


def delete_template(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        if not queries.delete_template(conn, named(name)):
            raise not_found(name)


def list_templates(engine: Engine) -> list[RowMapping]:
    """Every template, by name."""
    with engine.connect() as conn:
        return queries.list_templates(conn)


def template_refusal(template: Mapping[Any, Any] | None, name: str, channel: str) -> Reasons:
    """Why a campaign or notification of `channel` may not use this template (None: missing)."""
    if template is None:
        return {"template": [f"no template named {name!r}"]}
    if template["channel"] != channel:
        return {"template": [f"template {name!r} is for channel {template['channel']}"]}
    return {}


def copy_template(conn: Connection, values: Mapping[str, Any], channel: str) -> dict[str, Any]:
    """The values with the named template's contents copied in; a subject given wins."""
    name = values["template"]
    template = queries.get_template(conn, name)
    reasons = template_refusal(template, name, channel)
    if reasons or template is None:
        raise InvalidInput("the template cannot be used", reasons)
    copied = {column: template[column] for column in CONTENT_COLUMNS}
    if values.get("subject"):
        copied["subject"] = values["subject"]
    return {**values, **copied}

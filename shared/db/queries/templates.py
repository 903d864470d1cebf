"""Template statements: insert, replace, delete, read one, read many by name, list by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from shared.db.models import Template

TEMPLATE = Template.__table__


def insert_template(conn: Connection, values: Mapping[str, Any]) -> RowMapping | None:
    """Insert a template and return it; None when the name is taken."""
    stmt = (
        insert(Template)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Template.name])
        .returning(*TEMPLATE.c)
    )
    return conn.execute(stmt).mappings().first()


def replace_template(conn: Connection, name: str, values: Mapping[str, Any]) -> RowMapping | None:
    """Set every field of a template; None when it does not exist."""
    stmt = (
        update(Template)
        .where(Template.name == name)
        .values(**values, updated_at=func.now())
        .returning(*TEMPLATE.c)
    )
    return conn.execute(stmt).mappings().first()


def delete_template(conn: Connection, name: str) -> bool:
    """Delete a template; campaigns and notifications keep their copies (template set NULL)."""
    deleted = conn.execute(delete(Template).where(Template.name == name).returning(Template.name))
    return deleted.first() is not None


def get_template(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(TEMPLATE).where(Template.name == name)).mappings().first()


def templates_by_name(conn: Connection, names: Sequence[str]) -> dict[str, RowMapping]:
    """The templates of these names that exist, by name, in one statement."""
    if not names:
        return {}
    stmt = select(TEMPLATE).where(Template.name.in_(sorted(set(names))))
    return {row["name"]: row for row in conn.execute(stmt).mappings()}


def list_templates(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(TEMPLATE).order_by(Template.name)).mappings())

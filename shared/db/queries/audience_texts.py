"""A campaign's reachable audience grouped by what its text renders from and how it is routed.

The text can only differ between recipients through the variables it uses, and the route only
through the operator code and the first digits of the phone, so one grouped statement gives
every distinct (values, route key) with its count: the caller renders once per group.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from shared.db.queries.audience import HAS_ADDRESS, matches_filter, opted_out
from shared.domain.channels import rules_for
from shared.domain.templates import CLIENT_FIELDS


@dataclass(frozen=True, slots=True)
class TextGroup:
    """Recipients whose text renders from the same values and who take the same route."""

    values: Mapping[str, object]
    operator_code: str | None
    phone_prefix: str | None
    recipients: int


def grouped_statement(names: list[str]) -> Any:
    """The statement for these variables: a client column by its name, else an attribute.

    Names reach the SQL only as bind parameters (attribute keys) or as the fixed client
    columns, so no template can inject anything.
    """
    selected = [
        f"c.{name}" if name in CLIENT_FIELDS else f"c.attributes -> :name_{index}"
        for index, name in enumerate(names)
    ]
    columns = "".join(f"{expression} AS v_{i}, " for i, expression in enumerate(selected))
    keys = ", ".join(str(position) for position in range(1, len(names) + 3))
    statement = text(
        f"""
        SELECT {columns}
               c.operator_code AS route_operator_code,
               left(regexp_replace(c.phone, '[^0-9]', '', 'g'), :prefix_length)
                   AS route_phone_prefix,
               count(*) AS recipients
          FROM client c
         WHERE {matches_filter(":tags", ":codes")}
           AND {HAS_ADDRESS} AND NOT {opted_out(":channel")}
         GROUP BY {keys}
         ORDER BY recipients DESC
        """
    )
    return statement.bindparams(
        bindparam("tags", type_=ARRAY(Text)), bindparam("codes", type_=ARRAY(Text))
    )


def audience_texts(
    conn: Connection,
    campaign: Mapping[str, Any],
    names: Collection[str],
    prefix_length: int,
) -> list[TextGroup]:
    """Groups of the recipients of a campaign (column names: channel, filter_tags,
    filter_operator_codes) by the values of `names` and by route key.

    `prefix_length`: how many leading digits of the phone decide the route (Routing's
    longest_prefix); 0 groups every phone together.
    """
    ordered = sorted(names)
    params: dict[str, Any] = {
        "channel": campaign["channel"],
        "address_field": rules_for(campaign["channel"]).address_field,
        "tags": list(campaign.get("filter_tags") or []),
        "codes": list(campaign.get("filter_operator_codes") or []),
        "prefix_length": prefix_length,
        **{f"name_{i}": name for i, name in enumerate(ordered) if name not in CLIENT_FIELDS},
    }
    rows = conn.execute(grouped_statement(ordered), params).mappings()
    return [
        TextGroup(
            values={name: row[f"v_{i}"] for i, name in enumerate(ordered)},
            operator_code=row["route_operator_code"],
            phone_prefix=row["route_phone_prefix"] or None,
            recipients=row["recipients"],
        )
        for row in rows
    ]

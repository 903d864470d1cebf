"""Who a campaign reaches, as SQL fragments written once: its filter, and a usable address.

Statements that pick recipients (materialisation, the left-out counts, the preview) join
`campaign k` and `client c` with these, so the three can never disagree on who matches.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from shared.domain.channels import rules_for


def matches_filter(tags: str = "k.filter_tags", codes: str = "k.filter_operator_codes") -> str:
    """Client c carries one of the tags and one of the operator codes (an empty list: any)."""
    return (
        f"(cardinality({tags}) = 0 OR c.tags && {tags})"
        f" AND (cardinality({codes}) = 0 OR c.operator_code = ANY({codes}))"
    )


# :address_field names the client column the campaign's channel sends to (ChannelRules).
HAS_ADDRESS = (
    "coalesce(CASE :address_field WHEN 'phone' THEN c.phone WHEN 'email' THEN c.email END, '')"
    " <> ''"
)


def opted_out(channel: str = "k.channel") -> str:
    return f"({channel} = ANY(c.opted_out))"


MATCHES_FILTER = matches_filter()
REACHABLE = f"{HAS_ADDRESS} AND NOT {opted_out()}"


CAMPAIGN_CHANNEL = text("SELECT channel FROM campaign WHERE id = :campaign_id")


def address_field(conn: Connection, campaign_id: int) -> str:
    """The client column the campaign's channel sends to; UnknownChannel if none is registered."""
    channel = conn.execute(CAMPAIGN_CHANNEL, {"campaign_id": campaign_id}).scalar_one()
    return rules_for(channel).address_field

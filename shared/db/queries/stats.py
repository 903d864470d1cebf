"""Read-only statements for progress and previews: recent sends per campaign, audience by zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, Text

from shared.db.queries.audience import HAS_ADDRESS, matches_filter, opted_out
from shared.domain.channels import rules_for

# One index probe per campaign on ix_message_campaign_id_sent_at.
RECENT_SENT = text(
    """
    SELECT k.id,
           (SELECT count(*) FROM message m
             WHERE m.campaign_id = k.id
               AND m.sent_at > now() - make_interval(secs => :seconds)) AS n
      FROM unnest(:ids) AS k(id)
    """
).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))

# The recipients materialisation would pick, counted per time zone, with the clients the
# filter matches but that channel cannot reach. Each left-out client counts under one reason
# only: no address first, then the opt-out.
AUDIENCE_BY_ZONE = text(
    f"""
    SELECT c.timezone,
           count(*) AS matched,
           count(*) FILTER (WHERE :address_field = 'phone' AND NOT ({HAS_ADDRESS})) AS no_phone,
           count(*) FILTER (WHERE :address_field = 'email' AND NOT ({HAS_ADDRESS})) AS no_email,
           count(*) FILTER (WHERE {HAS_ADDRESS} AND {opted_out(":channel")}) AS opted_out
      FROM client c
     WHERE {matches_filter(":tags", ":codes")}
     GROUP BY c.timezone
     ORDER BY c.timezone
    """
).bindparams(bindparam("tags", type_=ARRAY(Text)), bindparam("codes", type_=ARRAY(Text)))


# One recipient the campaign would reach, the lowest id: what a preview renders the text for.
SAMPLE_RECIPIENT = text(
    f"""
    SELECT c.*
      FROM client c
     WHERE {matches_filter(":tags", ":codes")}
       AND {HAS_ADDRESS} AND NOT {opted_out(":channel")}
     ORDER BY c.id
     LIMIT 1
    """
).bindparams(bindparam("tags", type_=ARRAY(Text)), bindparam("codes", type_=ARRAY(Text)))


# Sends per bucket over ix_message_campaign_id_sent_at, from a bucket's start on, with the
# seconds summed from rows retention dropped.
SENT_PER_BUCKET = text(
    """
    SELECT bucket, sum(sent)::bigint AS sent
      FROM (
        SELECT (floor(extract(epoch FROM sent_at) / :width) * :width)::bigint AS bucket,
               count(*) AS sent
          FROM message
         WHERE campaign_id = :campaign_id
           AND sent_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
         GROUP BY 1
        UNION ALL
        SELECT (floor(second / :width) * :width)::bigint, sent
          FROM campaign_sent_archive
         WHERE campaign_id = :campaign_id
           AND second >= extract(epoch FROM coalesce(CAST(:since AS timestamptz), '-infinity'))
      ) s
     GROUP BY bucket
     ORDER BY bucket
    """
)


@dataclass(frozen=True, slots=True)
class ZoneAudience:
    """Clients of one time zone that a campaign's filter matches."""

    timezone: str
    matched: int
    no_phone: int
    no_email: int
    opted_out: int

    @property
    def recipients(self) -> int:
        return self.matched - self.no_phone - self.no_email - self.opted_out


def recent_sent(conn: Connection, campaign_ids: Sequence[int], seconds: float) -> dict[int, int]:
    """Messages of each campaign sent within the last `seconds`."""
    if not campaign_ids:
        return {}
    rows = conn.execute(RECENT_SENT, {"ids": list(campaign_ids), "seconds": seconds})
    return {row.id: row.n for row in rows}


def audience_params(campaign: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the audience statements for a campaign (column names)."""
    return {
        "channel": campaign["channel"],
        "address_field": rules_for(campaign["channel"]).address_field,
        "tags": list(campaign.get("filter_tags") or []),
        "codes": list(campaign.get("filter_operator_codes") or []),
    }


def audience_by_zone(conn: Connection, campaign: Mapping[str, Any]) -> list[ZoneAudience]:
    """Who a campaign (column names: channel, filter_tags, filter_operator_codes) would reach."""
    rows = conn.execute(AUDIENCE_BY_ZONE, audience_params(campaign))
    return [ZoneAudience(**row) for row in rows.mappings()]


def sample_recipient(conn: Connection, campaign: Mapping[str, Any]) -> RowMapping | None:
    """The first client (by id) the campaign would send to; None when it reaches nobody."""
    return conn.execute(SAMPLE_RECIPIENT, audience_params(campaign)).mappings().first()


def sent_per_bucket(
    conn: Connection, campaign_id: int, width_s: int, since: dt.datetime | None
) -> list[Row[Any]]:
    """(bucket: epoch seconds, sent) of a campaign's sends, buckets `width_s` wide."""
    params = {"campaign_id": campaign_id, "width": width_s, "since": since}
    return list(conn.execute(SENT_PER_BUCKET, params))

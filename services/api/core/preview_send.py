"""Send one preview of a campaign's message to an address, now, outside the campaign's records.

No message row, no counter; the delivery itself is injected, so no channel library here.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping

from services.api.core.campaigns import check_campaign, with_template
from shared.db.queries import recipients as queries
from shared.db.queries.campaigns import get_campaign
from shared.domain.emails import is_single_address
from shared.domain.outcomes import DeliveryResult
from shared.domain.phones import InvalidPhone, parse_phone
from shared.domain.templates import client_values, render, render_html
from shared.errors import InvalidInput, NotFound
from shared.messaging.envelopes import DeliveryItem

Deliver = Callable[[str, DeliveryItem], DeliveryResult]
# Preview ids sit far above any real message id (and within JSON's safe integers), and are
# random, so a gateway or mailbox that deduplicates by id still shows every preview.
PREVIEW_ID_BASE = 2**52
PREVIEW_DEADLINE_S = 300.0


def send_preview(
    engine: Engine, campaign_id: int, address: str, deliver: Deliver
) -> dict[str, Any]:
    """Render the campaign for the address's client (if any) and deliver it once."""
    with engine.connect() as conn:
        campaign = get_campaign(conn, campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        address, client = addressee(conn, campaign["channel"], address)
    return deliver_preview(campaign, address, client, deliver)


def send_draft_preview(
    engine: Engine, values: Mapping[str, Any], address: str, deliver: Deliver
) -> dict[str, Any]:
    """The same for a campaign not stored yet (column names), checked as on create."""
    with engine.connect() as conn:
        values = with_template(
            conn, {"starts_at": dt.datetime.now(dt.UTC), **values}, values["channel"]
        )
        check_campaign(conn, values)
        address, client = addressee(conn, values["channel"], address)
    return deliver_preview(values, address, client, deliver)


def addressee(conn: Connection, channel: str, address: str) -> tuple[str, RowMapping | None]:
    """The normalised address and the client who has it, if any."""
    address = normalised_address(channel, address)
    client = (
        queries.client_by_email(conn, address)
        if channel == "email"
        else queries.client_by_phone(conn, address)
    )
    return address, client


def deliver_preview(
    campaign: Mapping[Any, Any], address: str, client: RowMapping | None, deliver: Deliver
) -> dict[str, Any]:
    item = preview_item(campaign, address, client)
    result = deliver(campaign["channel"], item)
    return {
        "kind": result.kind,
        "error": result.error,
        "message_id": item.message_id,
        "address": address,
        "client_id": client["id"] if client is not None else None,
    }


def normalised_address(channel: str, address: str) -> str:
    """An e-mail for email campaigns, an E.164 phone for the others; InvalidInput otherwise."""
    address = address.strip()
    if channel == "email":
        if not is_single_address(address):
            raise InvalidInput(
                "the address is not valid", {"address": ["must be one e-mail address"]}
            )
        return address
    try:
        return parse_phone(address).e164
    except InvalidPhone as exc:
        raise InvalidInput("the address is not valid", {"address": [str(exc)]}) from exc


def preview_item(
    campaign: Mapping[Any, Any], address: str, client: RowMapping | None
) -> DeliveryItem:
    values: dict[str, object] = {}
    if client is not None:
        values = client_values(
            client["attributes"],
            client["phone"],
            client["email"],
            client["operator_code"],
            client["timezone"],
        )
    is_email = campaign["channel"] == "email"
    return DeliveryItem(
        message_id=PREVIEW_ID_BASE + secrets.randbelow(PREVIEW_ID_BASE),
        address=address,
        text=render(campaign["text"], values),
        attempt=1,
        deadline=time.time() + PREVIEW_DEADLINE_S,
        subject=render(campaign["subject"], values) if campaign.get("subject") else None,
        html=render_html(campaign["html"], values) if is_email and campaign.get("html") else None,
        client_id=client["id"] if client is not None and is_email else None,
    )

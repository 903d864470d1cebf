"""One-click unsubscribe links over HTTP on the real database: pages, opt-outs, forgeries."""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.db.queries.statuses import materialise
from shared.domain.signing import sign_unsubscribe
from tests.conftest import WRITE_TOKEN
from tests.support.factories import make_campaign, make_clients

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
KEY = "unsubscribe-test-key"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def api(settings, engine: Engine) -> FlaskClient:
    return create_app(dataclasses.replace(settings, signing_key=KEY), engine).test_client()


@pytest.fixture
def ann(engine: Engine) -> int:
    [client_id] = make_clients(engine, 1, email="ann@example.com")
    return client_id


def opted_out(engine: Engine, client_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalar(text("SELECT opted_out FROM client WHERE id = :id"), {"id": client_id})
        )


def link(client_id: int, channel: str = "email", key: str = KEY) -> str:
    return f"/unsubscribe/{sign_unsubscribe(key, client_id, channel)}"


def test_one_click_post_records_the_opt_out_without_an_api_token(api, engine, ann):
    response = api.post(link(ann), data=ONE_CLICK)

    assert response.status_code == 200
    assert response.json == {
        "client_id": ann,
        "channel": "email",
        "opted_out": True,
        "address": "a**@example.com",
    }
    assert opted_out(engine, ann) == ["email"]


def test_the_opt_out_shows_in_the_clients_api_and_can_be_undone_there(api, engine, ann):
    api.post(link(ann), data=ONE_CLICK)

    shown = api.get(f"/api/v1/clients/{ann}", headers=AUTH).json["opted_out"]
    undone = api.patch(f"/api/v1/clients/{ann}", json={"opted_out": []}, headers=AUTH)

    assert shown == ["email"]
    assert undone.status_code == 200 and undone.json["opted_out"] == []
    assert opted_out(engine, ann) == []


def test_following_a_link_twice_records_it_once(api, engine, ann):
    api.post(link(ann), data=ONE_CLICK)

    again = api.post(link(ann), data=ONE_CLICK)

    assert again.status_code == 200
    assert opted_out(engine, ann) == ["email"]


def test_get_only_describes_and_changes_nothing(api, engine, ann):
    as_json = api.get(link(ann), headers={"Accept": "application/json"})
    as_page = api.get(link(ann), headers={"Accept": "text/html,*/*;q=0.8"})

    assert as_json.status_code == 200 and as_json.json["opted_out"] is False
    assert as_page.status_code == 200 and as_page.mimetype == "text/html"
    page = as_page.get_data(as_text=True)
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert "a**@example.com" in page and "ann@example.com" not in page
    assert as_page.headers["Cache-Control"] == "no-store"
    assert as_page.headers["Referrer-Policy"] == "no-referrer"
    assert opted_out(engine, ann) == []


def test_the_page_form_unsubscribes_a_browser(api, engine, ann):
    response = api.post(link(ann), data=ONE_CLICK, headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert opted_out(engine, ann) == ["email"]


@pytest.mark.parametrize(
    "make_link",
    [
        lambda cid: link(cid, key="someone-elses-key"),
        lambda cid: link(cid)[:-1] + ("A" if link(cid)[-1] != "A" else "B"),
        lambda cid: link(cid + 1000),
        lambda cid: link(cid, channel="fax"),
        lambda cid: "/unsubscribe/" + "x" * 40,
        lambda cid: f"/unsubscribe/{cid}",
    ],
    ids=["wrong-key", "altered", "unknown-client", "unknown-channel", "garbage", "bare-id"],
)
def test_a_forged_or_altered_link_changes_nothing(api, engine, ann, make_link):
    target = make_link(ann)

    posted = api.post(target, data=ONE_CLICK)
    fetched = api.get(target)

    assert posted.status_code == 404 and fetched.status_code == 404
    assert posted.json["message"] == "this unsubscribe link is not valid"
    assert opted_out(engine, ann) == []


def test_a_link_of_a_deleted_client_is_not_found(api, engine, ann):
    api.delete(f"/api/v1/clients/{ann}", headers=AUTH)

    assert api.post(link(ann), data=ONE_CLICK).status_code == 404


def test_a_post_without_the_one_click_body_is_refused(api, engine, ann):
    response = api.post(link(ann), data={"List-Unsubscribe": "Yes"})

    assert response.status_code == 400
    assert opted_out(engine, ann) == []


def test_an_opt_out_cancels_pending_messages_of_that_channel_only(api, engine, ann):
    email_campaign = make_campaign(engine, channel="email", subject="Hi")
    http_campaign = make_campaign(engine, channel="http")
    with engine.begin() as conn:
        materialise(conn, email_campaign)
        materialise(conn, http_campaign)

    api.post(link(ann), data=ONE_CLICK)

    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT campaign_id, status FROM message WHERE client_id = :c"), {"c": ann}
            ).all()
        )
        progress = {
            campaign_id: (pending, cancelled)
            for campaign_id, pending, cancelled in conn.execute(
                text("SELECT campaign_id, pending, cancelled FROM campaign_progress")
            )
        }
    assert statuses == {email_campaign: "cancelled", http_campaign: "pending"}
    assert progress[email_campaign] == (0, 1)
    assert progress[http_campaign] == (1, 0)


def test_an_opted_out_client_is_left_out_of_later_campaigns_of_that_channel(api, engine, ann):
    [bob] = make_clients(engine, 1, email="bob@example.com", first_phone=79100000000)
    api.post(link(ann), data=ONE_CLICK)
    email_campaign = make_campaign(engine, channel="email", subject="Hi")
    http_campaign = make_campaign(engine, channel="http")

    with engine.begin() as conn:
        materialise(conn, email_campaign)
        materialise(conn, http_campaign)
        recipients = conn.execute(text("SELECT campaign_id, client_id FROM message")).all()

    assert sorted(recipients) == sorted(
        [(email_campaign, bob), (http_campaign, ann), (http_campaign, bob)]
    )

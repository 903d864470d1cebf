"""The Django backend's pure parts: keys from Message-ID and recipient, one item per recipient."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives

from herald_client import HeraldClient, HeraldError, Notification
from herald_client.django import EmailBackend, idempotency_key, message_id, notifications

FROM = "app@example.org"


def letter(**kwargs: Any) -> EmailMultiAlternatives:
    return EmailMultiAlternatives(
        kwargs.pop("subject", "Hello"), kwargs.pop("body", "Plain"), FROM, **kwargs
    )


def test_a_key_is_the_same_for_the_same_message_and_recipient_and_differs_otherwise() -> None:
    key = idempotency_key("<m1@x>", "ann@example.org")

    assert key == idempotency_key("<m1@x>", "Ann@Example.org")
    assert key != idempotency_key("<m2@x>", "ann@example.org")
    assert key != idempotency_key("<m1@x>", "bob@example.org")
    assert len(key) <= 255


def test_a_message_without_a_message_id_gets_one_and_keeps_it() -> None:
    message = letter(to=["ann@example.org"])

    first = message_id(message)

    assert first == message_id(message) == message.extra_headers["Message-ID"]


def test_a_message_id_header_given_by_the_application_is_used() -> None:
    message = letter(to=["ann@example.org"], headers={"message-id": "<given@app>"})

    assert message_id(message) == "<given@app>"


def test_every_recipient_of_to_cc_and_bcc_becomes_one_email_notification() -> None:
    message = letter(
        to=["Ann <ann@example.org>", "bob@example.org"],
        cc=["carol@example.org", "ANN@example.org"],
        bcc=["dan@example.org"],
        headers={"Message-ID": "<m@app>"},
    )
    message.attach_alternative("<p>Rich</p>", "text/html")

    items = notifications(message)

    assert [item["to"] for item in items] == [
        {"email": "ann@example.org"},
        {"email": "bob@example.org"},
        {"email": "carol@example.org"},
        {"email": "dan@example.org"},
    ]
    assert {(i["channel"], i["subject"], i["text"], i["html"]) for i in items} == {
        ("email", "Hello", "Plain", "<p>Rich</p>")
    }
    assert [item["idempotency_key"] for item in items] == [
        idempotency_key("<m@app>", address)
        for address in (
            "ann@example.org",
            "bob@example.org",
            "carol@example.org",
            "dan@example.org",
        )
    ]


def test_an_html_body_is_sent_as_html_with_its_text_stripped() -> None:
    message = EmailMessage("Hi", "<p>Hello <b>you</b></p>", FROM, ["ann@example.org"])
    message.content_subtype = "html"

    [item] = notifications(message)

    assert (item["text"], item["html"]) == ("Hello you", "<p>Hello <b>you</b></p>")


def test_a_plain_message_has_no_html() -> None:
    [item] = notifications(letter(to=["ann@example.org"]))

    assert "html" not in item


def test_attachments_are_refused_rather_than_dropped() -> None:
    message = letter(to=["ann@example.org"])
    message.attach("report.csv", "a,b\n", "text/csv")

    with pytest.raises(HeraldError, match="attachments"):
        notifications(message)


class StubClient:
    """Answers notify_many from a list, refusing the addresses it is told to."""

    def __init__(self, refuse: Iterable[str] = ()) -> None:
        self.refuse = set(refuse)
        self.requests: list[list[Mapping[str, Any]]] = []

    def notify_many(self, items: Iterable[Mapping[str, Any]]) -> list[Notification | HeraldError]:
        batch = list(items)
        self.requests.append(batch)
        return [
            HeraldError(422, "refused", {"to.email": ["Not an e-mail address."]})
            if item["to"]["email"] in self.refuse
            else Notification(n, "queued")
            for n, item in enumerate(batch, start=1)
        ]

    def close(self) -> None:
        pass


def backend(client: StubClient, fail_silently: bool = False) -> EmailBackend:
    made = EmailBackend(fail_silently, url="http://herald.invalid", token="t", timeout=1)
    made.client = cast(HeraldClient, client)
    return made


def test_all_messages_go_in_one_request_and_the_count_is_of_messages() -> None:
    client = StubClient()
    messages = [letter(to=["a@x.org", "b@x.org"]), letter(to=["c@x.org"]), letter(to=[])]

    sent = backend(client).send_messages(messages)

    assert sent == 2
    assert [len(batch) for batch in client.requests] == [3]
    assert list(messages[0].herald_notifications) == ["a@x.org", "b@x.org"]


def test_a_refused_recipient_raises_unless_failing_silently() -> None:
    messages = [letter(to=["a@x.org"]), letter(to=["bad"])]

    with pytest.raises(HeraldError, match="refused 1 recipient"):
        backend(StubClient(refuse=["bad"])).send_messages(messages)
    assert backend(StubClient(refuse=["bad"]), fail_silently=True).send_messages(messages) == 1

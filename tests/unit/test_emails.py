"""Campaign e-mails as MIME: headers, parts, the envelope, and what is refused."""

from __future__ import annotations

import email
import email.policy
import email.utils

import pytest

from shared.domain.emails import (
    Email,
    build_envelope,
    build_message,
    message_id_header,
    sender_address,
)

MAIL_FROM = "Herald News <news@mail.example.org>"
SENT_AT = 1_790_000_000.0


def parsed(mail: Email) -> email.message.EmailMessage:
    envelope = build_envelope(mail, MAIL_FROM, SENT_AT)
    return email.message_from_bytes(envelope.data, policy=email.policy.default)


def test_headers_say_who_what_when_and_which_message() -> None:
    message = parsed(Email(7, "ann@example.com", "Hello Ann", "Hi!"))

    assert message["From"] == MAIL_FROM
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Hello Ann"
    assert message["Message-ID"] == "<herald-7@mail.example.org>"
    assert email.utils.parsedate_to_datetime(message["Date"]).timestamp() == SENT_AT


def test_plain_text_alone_is_a_single_text_part() -> None:
    message = parsed(Email(7, "ann@example.com", "Hello", "Hi Ann,\nnews!"))

    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Hi Ann,\nnews!\n"


def test_html_is_an_alternative_to_the_text() -> None:
    message = parsed(Email(7, "ann@example.com", "Hello", "Hi Ann", "<p>Hi Ann</p>"))

    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "Hi Ann"
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<p>Hi Ann</p>"


def test_non_ascii_text_and_subject_survive_the_wire_as_ascii() -> None:
    mail = Email(7, "ann@example.com", "Привет, Аня", "Привет, Аня! café", "<p>Привет</p>")

    envelope = build_envelope(mail, MAIL_FROM, SENT_AT)
    message = email.message_from_bytes(envelope.data, policy=email.policy.default)

    assert envelope.data.isascii()
    assert message["Subject"] == "Привет, Аня"
    text, html = message.iter_parts()
    assert text.get_content().strip() == "Привет, Аня! café"
    assert html.get_content().strip() == "<p>Привет</p>"


def test_unsubscribe_headers_offer_one_click_as_plain_header_lines() -> None:
    url = "https://herald.example.org/unsubscribe/" + "NTplbWFpbA." + "x" * 43
    mail = Email(7, "ann@example.com", "Hello", "Hi", unsubscribe_url=url)

    data = build_envelope(mail, MAIL_FROM, SENT_AT).data

    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in data
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data


def test_no_unsubscribe_headers_without_a_link() -> None:
    message = parsed(Email(7, "ann@example.com", "Hello", "Hi"))

    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


def test_the_envelope_carries_bare_addresses_and_crlf_lines() -> None:
    envelope = build_envelope(Email(7, "ann@example.com", "Hello", "a\nb"), MAIL_FROM, SENT_AT)

    assert envelope.sender == "news@mail.example.org"
    assert envelope.recipient == "ann@example.com"
    assert b"\r\n" in envelope.data and b"\n" not in envelope.data.replace(b"\r\n", b"")
    assert not envelope.needs_smtputf8


def test_a_non_ascii_address_needs_smtputf8() -> None:
    envelope = build_envelope(Email(7, "аня@пример.рф", "Hello", "Hi"), MAIL_FROM, SENT_AT)

    assert envelope.needs_smtputf8


@pytest.mark.parametrize(
    "subject",
    ["Hello\r\nBcc: victim@example.com", "Hello\nBcc: victim@example.com", "Hi\rthere"],
)
def test_a_line_break_in_the_subject_is_refused(subject: str) -> None:
    with pytest.raises(ValueError):
        build_message(Email(7, "ann@example.com", subject, "Hi"), MAIL_FROM, SENT_AT)


@pytest.mark.parametrize(
    "to",
    [
        "",
        "not-an-address",
        "ann@example.com, eve@example.com",
        "Ann <ann@example.com>",
        "ann@example.com\r\nBcc: eve@example.com",
        "ann @example.com",
    ],
)
def test_anything_but_one_bare_address_is_refused(to: str) -> None:
    with pytest.raises(ValueError):
        build_message(Email(7, to, "Hello", "Hi"), MAIL_FROM, SENT_AT)


@pytest.mark.parametrize(
    ("mail_from", "address"),
    [("herald@localhost", "herald@localhost"), ("Herald <h@x.org>", "h@x.org")],
)
def test_sender_address_is_the_bare_address(mail_from: str, address: str) -> None:
    assert sender_address(mail_from) == address


def test_a_from_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError):
        sender_address("Herald")


def test_message_id_is_stable_for_a_message() -> None:
    assert message_id_header(12, MAIL_FROM) == message_id_header(12, MAIL_FROM)
    assert message_id_header(12, MAIL_FROM) != message_id_header(13, MAIL_FROM)

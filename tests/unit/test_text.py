"""storable_text_error: NUL and lone surrogates are refused, every other code point is kept."""

from __future__ import annotations

import pytest
from hypothesis import given

from shared.domain.text import storable_text_error
from tests.support.strategies import any_text


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "😀 émoji",
        "\u202eevil\u202c",
        "\ufffe\uffff\ufdd0",
        "\U0010ffff",
        "\r\n\t\x01\x7f",
    ],
)
def test_text_postgres_can_store_has_no_error(value: str) -> None:
    assert storable_text_error(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("\x00", "must not contain NUL characters"),
        ("abc\x00", "must not contain NUL characters"),
        ("\ud800", "must be Unicode text: U+D800 is a lone surrogate"),
        ("x\udfffy", "must be Unicode text: U+DFFF is a lone surrogate"),
        # Two code points, as a CESU-8 decoder would give for one emoji: still not UTF-8.
        ("\ud83d\ude00", "must be Unicode text: U+D83D is a lone surrogate"),
        ("a\udc00\x00", "must be Unicode text: U+DC00 is a lone surrogate"),
    ],
)
def test_the_first_unstorable_character_is_named(value: str, reason: str) -> None:
    assert storable_text_error(value) == reason


def has_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(any_text())
def test_text_is_storable_exactly_when_it_has_utf8_and_no_nul(value: str) -> None:
    assert (storable_text_error(value) is None) == (has_utf8(value) and "\x00" not in value)


def test_storable_text_replaces_only_what_postgresql_refuses():
    from shared.domain.text import storable_text

    assert storable_text("a\x00b\ud800c\U0001f600") == "a\ufffdb\ufffdc\U0001f600"
    assert storable_text("plain") == "plain"

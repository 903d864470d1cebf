"""Unsubscribe tokens: they name exactly one client and channel, and nothing else verifies."""

from __future__ import annotations

import pytest

from shared.domain.signing import OptOut, sign_unsubscribe, verify_unsubscribe

KEY = "test-signing-key"


def test_a_token_names_its_client_and_channel() -> None:
    token = sign_unsubscribe(KEY, 42, "email")

    assert verify_unsubscribe(KEY, token) == OptOut(42, "email")


def test_a_token_is_url_safe() -> None:
    token = sign_unsubscribe(KEY, 9_000_000_001, "email")

    assert all(ch.isalnum() or ch in "-_." for ch in token)


def test_tokens_differ_per_client_and_per_channel() -> None:
    tokens = {sign_unsubscribe(KEY, 1, "email"), sign_unsubscribe(KEY, 2, "email")}
    tokens.add(sign_unsubscribe(KEY, 1, "http"))

    assert len(tokens) == 3


def test_a_token_signed_with_another_key_does_not_verify() -> None:
    token = sign_unsubscribe("another-key", 42, "email")

    assert verify_unsubscribe(KEY, token) is None


def test_every_altered_character_breaks_the_token() -> None:
    token = sign_unsubscribe(KEY, 42, "email")

    for position, char in enumerate(token):
        for replacement in {"A", "B", "_", "-", "0", "."} - {char}:
            altered = token[:position] + replacement + token[position + 1 :]
            assert verify_unsubscribe(KEY, altered) is None, altered


def test_a_payload_swapped_onto_another_signature_does_not_verify() -> None:
    mine = sign_unsubscribe(KEY, 42, "email")
    theirs = sign_unsubscribe(KEY, 43, "email")

    forged = theirs.split(".")[0] + "." + mine.split(".")[1]

    assert verify_unsubscribe(KEY, forged) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "a.b.c", "NDI6ZW1haWw.", "%%%.%%%", "x" * 5000, "NDI6ZW1haWw.=="],
)
def test_garbage_is_not_a_token(token: str) -> None:
    assert verify_unsubscribe(KEY, token) is None


@pytest.mark.parametrize(("client_id", "channel"), [(0, "email"), (-1, "email"), (1, "E:x")])
def test_refuses_to_sign_what_it_could_not_read_back(client_id: int, channel: str) -> None:
    with pytest.raises(ValueError):
        sign_unsubscribe(KEY, client_id, channel)

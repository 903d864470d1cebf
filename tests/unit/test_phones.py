"""Phone parsing: E.164 normalisation, operator code derivation, invalid numbers."""

from __future__ import annotations

import pytest

from shared.domain.phones import InvalidPhone, parse_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+79123456789", "+79123456789"),
        ("+7 (912) 345-67-89", "+79123456789"),
        ("79123456789", "+79123456789"),
        ("  +44 20 7946 0958 ", "+442079460958"),
        ("14155552671", "+14155552671"),
        ("+٣٣٦١٢٣٤٥٦٧٨", "+33612345678"),
    ],
)
def test_normalises_to_e164(raw: str, e164: str) -> None:
    assert parse_phone(raw).e164 == e164


@pytest.mark.parametrize(
    ("raw", "code"),
    [("+79123456789", "912"), ("+442079460958", "207"), ("+14155552671", "415")],
)
def test_operator_code_is_first_three_national_digits(raw: str, code: str) -> None:
    assert parse_phone(raw).operator_code == code


def test_parse_keeps_the_national_significant_number() -> None:
    assert parse_phone("+33 6 12 34 56 78").national_number == "612345678"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "abc", "+1 555 0100", "+7912", "0079123456789", "+999123456789", "1" * 40],
)
def test_rejects_invalid_numbers(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        parse_phone(raw)

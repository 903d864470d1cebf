"""Parse phone numbers to E.164 and derive the operator code from the national number."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

MAX_INPUT_CHARS = 32


class InvalidPhone(ValueError):
    """The text is not a valid international phone number."""


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    national_number: str

    @property
    def operator_code(self) -> str:
        """The first three digits of the national significant number."""
        return self.national_number[:3]


def parse_phone(raw: str) -> Phone:
    """Parse '+CC…' or digits starting with a country code; raise InvalidPhone if not valid."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("a phone number is required")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidPhone(f"a phone number has at most {MAX_INPUT_CHARS} characters")
    # Without a default region, phonenumbers needs the leading '+' to read the country code.
    candidate = text if text.startswith("+") else f"+{text}"
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a phone number: use +<country code><number>") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number for its country")
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        national_number=phonenumbers.national_significant_number(number),
    )

"""Shared schema parts: strict base schema, storable text, scalars, pagination, time zones."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.domain.text import storable_text_error
from shared.domain.zones import ZONES

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


# PostgreSQL text cannot hold NUL; the spec says so, so clients and fuzzers know it. Lone
# surrogates are refused too, but no Unicode string holds one, and a pattern naming them
# does not even compile in Rust's or Go's regex engines, which validate specs too.
NO_NUL_PATTERN = "^[^\\x00]*$"
MAX_SCALAR_CHARS = 1000


def check_storable(text: str) -> str:
    """The text itself, or a ValidationError saying why PostgreSQL could not store it."""
    reason = storable_text_error(text)
    if reason is not None:
        raise ValidationError(reason)
    return text


class Text(fields.String):
    """A string PostgreSQL can store; every string a request carries is loaded as one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A Regexp validator documents its own pattern, a OneOf its enum, an Email its format;
        # each already excludes NUL, and a pattern beside them would only mislead generators.
        documented = validate.Regexp | validate.OneOf | validate.Email
        if not any(isinstance(v, documented) for v in self.validators):
            self.metadata = {"pattern": NO_NUL_PATTERN, **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return check_storable(super()._deserialize(value, attr, data, **kwargs))


class EmailText(Text, fields.Email):
    """An e-mail address (format email in the spec) that PostgreSQL can store."""


class Scalar(fields.Field):
    """A template value: a string, a finite number or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "metadata",
            {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_SCALAR_CHARS, "pattern": NO_NUL_PATTERN},
                    {"type": "number"},
                    {"type": "boolean"},
                ]
            },
        )
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            check_storable(value)
            if len(value) > MAX_SCALAR_CHARS:
                raise ValidationError(f"must be at most {MAX_SCALAR_CHARS} characters")
            return value
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise ValidationError("must be a string, a number or a boolean")


def timezone_field(**kwargs: Any) -> Text:
    """An IANA time zone name from the fixed allow-list (an enum in the OpenAPI spec)."""
    return Text(
        validate=validate.OneOf(ZONES, error="{input!r} is not a known IANA time zone"),
        **kwargs,
    )


class PageArgsSchema(StrictSchema):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"Page size, at most {MAX_PAGE}."},
    )
    after = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0),
        metadata={"description": "Return items with an id greater than this (next_after)."},
    )


class PageSchema(Schema):
    next_after = fields.Integer(
        allow_none=True,
        metadata={"description": "Pass as ?after= for the next page; null on the last page."},
    )

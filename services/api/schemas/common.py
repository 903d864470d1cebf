"""Shared schema parts: strict base schema, NUL-free text, scalars, pagination, time zones."""

from __future__ import annotations

import importlib.resources
import math
import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

MAX_PAGE = 1000
DEFAULT_PAGE = 100

# Read from the tzdata package, not the host's /usr/share/zoneinfo, so the allow-list (and the
# OpenAPI enum) is the same everywhere; the excluded names are aliases for host settings.
EXCLUDED_ZONES = frozenset({"localtime", "posixrules", "Factory"})
TIMEZONES: tuple[str, ...] = tuple(
    sorted(
        set(importlib.resources.files("tzdata").joinpath("zones").read_text().split())
        - EXCLUDED_ZONES
    )
)


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


# PostgreSQL text cannot hold NUL; the spec says so, so clients and fuzzers know it.
NO_NUL_PATTERN = "^[^\\x00]*$"
MAX_SCALAR_CHARS = 1000


class Text(fields.String):
    """A string PostgreSQL can store: no NUL characters."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A Regexp validator documents its own pattern; the two would not combine.
        if not any(isinstance(getattr(v, "regex", None), re.Pattern) for v in self.validators):
            self.metadata = {"pattern": NO_NUL_PATTERN, **self.metadata}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        return text


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
            if "\x00" in value:
                raise ValidationError("must not contain NUL characters")
            if len(value) > MAX_SCALAR_CHARS:
                raise ValidationError(f"must be at most {MAX_SCALAR_CHARS} characters")
            return value
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise ValidationError("must be a string, a number or a boolean")


def timezone_field(**kwargs: Any) -> fields.String:
    """An IANA time zone name from the fixed allow-list (an enum in the OpenAPI spec)."""
    return fields.String(
        validate=validate.OneOf(TIMEZONES, error="{input!r} is not a known IANA time zone"),
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

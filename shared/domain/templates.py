"""Render "{{ name }}" text from client fields and attributes; a missing value renders empty.

Only variable substitution: no expressions, filters or escapes, so a template can never run
code or fail at send time once it has been accepted. HTML templates escape every value.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What a stored template may be named (it appears in URLs).
TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
OPEN, CLOSE = "{{", "}}"

# Client columns a template may use besides the client's attribute keys.
CLIENT_FIELDS = frozenset({"phone", "email", "operator_code", "timezone"})


class TemplateError(ValueError):
    """The template's syntax is invalid: an unclosed '{{' or a bad variable name."""


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


Part = str | Variable


def parse(template: str) -> tuple[Part, ...]:
    """Split a template into literal text and variables; raise TemplateError on bad syntax."""
    parts: list[Part] = []
    position = 0
    while (start := template.find(OPEN, position)) != -1:
        end = template.find(CLOSE, start + len(OPEN))
        if end == -1:
            raise TemplateError(f"unclosed '{{{{' at character {start + 1}")
        name = template[start + len(OPEN) : end].strip()
        if not name:
            raise TemplateError(f"empty variable name at character {start + 1}")
        if not NAME.fullmatch(name):
            raise TemplateError(
                f"invalid variable name {name!r} at character {start + 1}: use letters, "
                "digits and '_', not starting with a digit"
            )
        if start > position:
            parts.append(template[position:start])
        parts.append(Variable(name))
        position = end + len(CLOSE)
    if position < len(template):
        parts.append(template[position:])
    return tuple(parts)


def variables(template: str) -> set[str]:
    """Return the names of the variables a template uses."""
    return {part.name for part in parse(template) if isinstance(part, Variable)}


def render(template: str, values: Mapping[str, object]) -> str:
    """Substitute every variable; a missing or null value renders as the empty string."""
    return "".join(
        part if isinstance(part, str) else format_value(values.get(part.name))
        for part in parse(template)
    )


def render_html(template: str, values: Mapping[str, object]) -> str:
    """Like render, but every value is HTML-escaped: client data never becomes markup."""
    return "".join(
        part if isinstance(part, str) else html.escape(format_value(values.get(part.name)))
        for part in parse(template)
    )


def client_values(
    attributes: Mapping[str, object],
    phone: str | None,
    email: str | None,
    operator_code: str | None,
    timezone: str | None,
) -> dict[str, object]:
    """The variables a template may use: the client's attributes, then its fields."""
    return {
        **attributes,
        "phone": phone,
        "email": email,
        "operator_code": operator_code,
        "timezone": timezone,
    }


def format_value(value: object) -> str:
    """Text of one value: JSON spelling for booleans, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

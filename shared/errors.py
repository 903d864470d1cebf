"""HeraldError > NotFound, Conflict, InvalidInput(field_errors), InvalidTransition.

Use cases raise these; each entry point maps them to its own protocol (HTTP status, ack verdict).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# field -> reasons; nested structures (a list item, a dict value) nest the same way.
FieldErrors = Mapping[str, Any]


class HeraldError(Exception):
    """A failure the caller can act on, with a message and optional per-field reasons."""

    def __init__(self, message: str, field_errors: FieldErrors | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field_errors: dict[str, Any] = dict(field_errors or {})


class NotFound(HeraldError):
    """The addressed resource does not exist."""


class Conflict(HeraldError):
    """The request clashes with the current state (a duplicate, a status that forbids it)."""


class InvalidInput(HeraldError):
    """The input is well-formed but not acceptable; field_errors say why, per field."""


class InvalidTransition(HeraldError):
    """The resource's status does not allow the requested action."""

"""HeraldError: what the API refused (status, message, field errors) or could not be reached."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class HeraldError(Exception):
    """A refused request (status 4xx or 5xx) or, with status None, an API out of reach.

    field_errors maps dotted field paths ("to.phone", "items.3.text") to their messages.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        field_errors: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.field_errors = dict(field_errors or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.status} {self.message}" if self.status is not None else self.message
        details = "; ".join(
            f"{path}: {' '.join(reasons)}" for path, reasons in self.field_errors.items()
        )
        return f"{head} ({details})" if details else head

    @classmethod
    def from_body(cls, status: int, reason: str, body: Any) -> HeraldError:
        """Read the API's error payload {code, status, message, errors: {json: {...}}}."""
        payload = body if isinstance(body, Mapping) else {}
        name = payload.get("status") or reason
        message = payload.get("message") or ""
        text = f"{name}: {message}" if message and name else str(message or name)
        return cls(status, text, field_errors(payload.get("errors")))


def field_errors(errors: Any) -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages; the location ("json") is dropped."""
    if not isinstance(errors, Mapping):
        return {}
    if set(errors) <= {"json", "query", "headers"}:
        merged: dict[str, list[str]] = {}
        for fields in errors.values():
            merged.update(field_errors(fields))
        return merged
    found: dict[str, list[str]] = {}
    for path, reason in _walk(errors, ""):
        found.setdefault(path, []).append(reason)
    return found


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _walk(inner, path)
    else:
        yield path or "_schema", str(value)

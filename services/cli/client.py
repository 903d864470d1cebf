"""The REST API over requests: one session, a timeout on every call, errors as ApiError."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

import requests

TIMEOUT_S = (5, 300)  # connect, read: an import of a million rows takes a while


class CliError(Exception):
    """Something the operator must read; the CLI prints it and exits non-zero."""


class ApiError(CliError):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str, errors: Mapping[str, Any] | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = dict(errors or {})

    def lines(self) -> list[str]:
        """`error: 409 Conflict: ...`, then one `  field: reason` line per field error."""
        lines = [f"error: {self.status} {self.message}"]
        for location, fields in self.errors.items():
            # The location ("json", "query") says nothing an operator needs.
            for path, reason in flatten(
                fields if isinstance(fields, Mapping) else {location: fields}
            ):
                lines.append(f"  {path}: {reason}")
        return lines


def flatten(errors: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested marshmallow messages as (dotted.path, reason) pairs."""
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from flatten(value, path)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    yield from flatten(item, path)
                else:
                    yield path, str(item)
        else:
            yield path, str(value)


class Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/api/v1"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body, None for 204; ApiError on 4xx/5xx."""
        try:
            response = self.http.request(method, self.base + path, timeout=TIMEOUT_S, **kwargs)
        except requests.ConnectionError as exc:
            raise CliError(f"error: cannot reach the API at {self.base}: {exc}") from exc
        except requests.Timeout as exc:
            raise CliError(f"error: the API at {self.base} did not answer in time") from exc
        if response.status_code >= 400:
            raise api_error(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    def upload(self, path: str, stream: IO[bytes], content_type: str) -> Any:
        """POST a file object; requests streams it rather than reading it into memory."""
        return self.call("POST", path, data=stream, headers={"Content-Type": content_type})


def api_error(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = body.get("status") or response.reason or ""
    message = body.get("message") or ""
    text = f"{status}: {message}" if message else str(status)
    return ApiError(response.status_code, text, body.get("errors"))

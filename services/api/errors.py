"""HeraldError -> status + flask-smorest payload {code, status, message, errors}, in one place.

Also the request parser (a broken body is 422, a non-JSON one 415) and the Api whose 405
responses keep their Allow header.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import flask_smorest
from flask import Request, g, request
from marshmallow import Schema
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES

from shared.errors import Conflict, HeraldError, InvalidInput, InvalidTransition, NotFound

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[HeraldError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidTransition: 409,
    InvalidInput: 422,
}


class Api(flask_smorest.Api):
    """flask-smorest's Api, keeping the Allow header on 405 and covering domain errors."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        payload, code, headers = super().handle_http_exception(error)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers = {**headers, "Allow": ", ".join(sorted(error.valid_methods))}
        return payload, code, headers

    def _register_error_handlers(self) -> None:
        super()._register_error_handlers()
        self._app.register_error_handler(HeraldError, self.handle_herald_error)
        self._app.register_error_handler(Exception, self.handle_unexpected)

    def handle_herald_error(self, error: HeraldError) -> Any:
        code = next(
            (status for kind, status in STATUS_BY_ERROR.items() if isinstance(error, kind)), 400
        )
        payload: dict[str, Any] = {
            "code": code,
            "status": status_name(code),
            "message": error.message,
        }
        if error.field_errors:
            payload["errors"] = {"json": error.field_errors}
        return payload, code

    def handle_unexpected(self, error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        log.exception(
            "unhandled error on %s %s request_id=%s",
            request.method,
            request.path,
            g.get("request_id"),
        )
        return self.handle_http_exception(InternalServerError())


def status_name(code: int) -> str:
    return HTTP_STATUS_CODES.get(code, "Unknown")


class JsonParser(FlaskParser):
    """A body that is not JSON is 415, one that does not parse is 422, never a 400 or a 500."""

    DEFAULT_VALIDATION_STATUS = 422

    def load_json(self, req: Request, schema: Schema) -> Any:
        has_body = bool(req.content_length) or "chunked" in req.headers.get("Transfer-Encoding", "")
        if has_body and not req.is_json:
            flask_smorest.abort(
                415, message="the body must be JSON (Content-Type: application/json)"
            )
        try:
            return super().load_json(req, schema)
        except RecursionError:
            # The stdlib decoder recurses per nesting level; no valid body nests that deep.
            flask_smorest.abort(422, message="the body is not valid JSON: nested too deeply")

    # flask_smorest ships no types, so mypy cannot see that abort() always raises.
    def _handle_invalid_json_error(  # type: ignore[misc]
        self, error: Exception, req: Request, *args: Any, **kwargs: Any
    ) -> NoReturn:
        flask_smorest.abort(422, message=f"the body is not valid JSON: {error}")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonParser()

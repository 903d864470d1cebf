"""OpenAPI settings and Swagger UI from the flask-swagger-ui package: no CDN, works offline."""

from __future__ import annotations

import importlib.resources
from typing import Any

from flask import Flask, Response, send_from_directory

SWAGGER_DIST = str(importlib.resources.files("flask_swagger_ui") / "dist")
STATIC_PREFIX = "/docs-static/"
SECURITY_SCHEME = "bearerAuth"

OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "Herald",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Swagger UI's page loads its three assets from here; it must end with '/'.
    "OPENAPI_SWAGGER_UI_URL": STATIC_PREFIX,
    # Left unset, Swagger UI shows a badge fetched from validator.swagger.io with the spec's
    # URL in the query: the page must reach no host but the API's own.
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
    "API_SPEC_OPTIONS": {
        "security": [{SECURITY_SCHEME: []}],
        "info": {
            "description": "Campaigns and notifications over an HTTP gateway and SMTP. "
            "Recipients are fixed when a campaign starts: clients added or re-tagged later "
            "do not join a campaign that has started."
        },
    },
}


def swagger_static(filename: str) -> Response:
    """One Swagger UI asset (bundle, preset, stylesheet) from the packaged dist."""
    return send_from_directory(SWAGGER_DIST, filename, max_age=86400)


def register_docs(app: Flask) -> None:
    """Serve the Swagger UI assets that /docs loads."""
    app.add_url_rule(f"{STATIC_PREFIX}<path:filename>", "swagger_static", swagger_static)

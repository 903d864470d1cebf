"""The operator console at /console: static ES modules served by the API itself, no CDN.

The page holds no data: everything it shows it reads from /api/v1 with the token the
operator signs in with, so the console needs no session of its own and no server templates.
The policy below lets the page load only its own files and talk only to this host.
"""

from __future__ import annotations

import importlib.resources

from flask import Flask, Response, request, send_from_directory

CONSOLE_PREFIX = "/console"
STATIC_DIR = str(importlib.resources.files(__name__) / "static")
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def index() -> Response:
    # Always revalidated, so a new release's page never pairs with cached old modules.
    return send_from_directory(STATIC_DIR, "index.html", max_age=0)


def asset(filename: str) -> Response:
    return send_from_directory(STATIC_DIR, filename, max_age=0)


def secure(response: Response) -> Response:
    """after_request: the console's pages and files carry the policy and hardening headers."""
    if request.path == CONSOLE_PREFIX or request.path.startswith(CONSOLE_PREFIX + "/"):
        response.headers.update(SECURITY_HEADERS)
    return response


def register_console(app: Flask) -> None:
    app.add_url_rule(CONSOLE_PREFIX, "console", index)
    app.add_url_rule(f"{CONSOLE_PREFIX}/", "console_slash", index)
    app.add_url_rule(f"{CONSOLE_PREFIX}/<path:filename>", "console_asset", asset)
    app.after_request(secure)

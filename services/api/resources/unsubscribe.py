"""/unsubscribe/{token}: the public one-click opt-out link that every campaign e-mail carries.

GET only describes (mail scanners fetch links, RFC 8058); POST One-Click records it.
"""

from __future__ import annotations

import html
from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort

from services.api.auth import context
from services.api.core import unsubscribe as core
from services.api.errors import Blueprint
from services.api.schemas.unsubscribe import OptOutSchema

blp = Blueprint("unsubscribe", __name__, description="Recipients' opt-out links (no token).")

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
FORM_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {ONE_CLICK_FIELD: {"type": "string", "enum": [ONE_CLICK_VALUE]}},
                "required": [ONE_CLICK_FIELD],
            }
        }
    },
}
# The token is the secret: keep it out of caches, referrers and search indexes.
PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
</head><body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>
"""
FORM = (
    '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
    '<button type="submit">Unsubscribe</button></form>'
)


@blp.route("/unsubscribe/<token>")
class Unsubscribe(MethodView):
    @blp.doc(security=[])
    @blp.response(200, OptOutSchema)
    def get(self, token: str) -> Any:
        """What this unsubscribe link does; browsers get a page with a button"""
        view = core.read_link(context().engine, context().settings.signing_key, token)
        return answer(view)

    @blp.doc(security=[], requestBody=FORM_BODY)
    @blp.response(200, OptOutSchema)
    def post(self, token: str) -> Any:
        """Opt the link's recipient out of its channel (one-click, RFC 8058)"""
        if request.form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
            abort(400, message="the body must be List-Unsubscribe=One-Click")
        view = core.follow_link(context().engine, context().settings.signing_key, token)
        return answer(view)


def answer(view: core.OptOutView) -> Any:
    """A page for a browser, else the JSON body (flask-smorest serialises the view)."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
        return view, 200, PRIVATE
    return Response(page(view), 200, headers=PRIVATE, content_type="text/html; charset=utf-8")


def page(view: core.OptOutView) -> str:
    who = html.escape(view.address or "this address")
    what = "e-mails" if view.channel == "email" else f"{html.escape(view.channel)} messages"
    if view.opted_out:
        title, text, form = "You are unsubscribed", f"{who} will get no more {what}.", ""
    else:
        title, text, form = "Unsubscribe?", f"Stop {what} to {who}.", FORM
    return PAGE.format(title=title, text=text, form=form)

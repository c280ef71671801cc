"""The second line of defence for the HTML forms (the first is the Origin check of
``litegate.server.limits.HostGuard``): a signed double-submit token.

A page with a form sets a cookie holding a token and puts the same token in a hidden field;
a form post must carry both, equal, and signed by this server (an HMAC with a secret the app
makes at start). Another site's page can neither read the cookie nor make a token that
verifies: cookies do not separate ports, so a page on another localhost port could plant a
cookie, but not a signed one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TypeVar

from fastapi import Request
from fastapi.responses import Response

from litegate.errors import Forbidden

R = TypeVar("R", bound=Response)  # the response's own class, kept for its caller

COOKIE = "litegate_csrf"
FIELD = "csrf_token"


def _secret(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "csrf_secret", None) is None:
        state.csrf_secret = secrets.token_bytes(32)
    return state.csrf_secret


def _signed(request: Request, nonce: str) -> str:
    return nonce + "." + hmac.new(_secret(request), nonce.encode(), hashlib.sha256).hexdigest()


def _valid(request: Request, token: str) -> bool:
    nonce, _, _ = token.partition(".")
    return bool(nonce) and hmac.compare_digest(token, _signed(request, nonce))


def form_token(request: Request) -> str:
    """The token this browser's forms carry: its cookie's when that one verifies, else a new
    one (set as the cookie by ``with_cookie``)."""
    token = getattr(request.state, "csrf_token", None)
    if token is None:
        cookie = request.cookies.get(COOKIE, "")
        token = cookie if _valid(request, cookie) else _signed(request, secrets.token_urlsafe(18))
        request.state.csrf_token = token
    return token


def hidden_field(request: Request) -> str:
    return f'<input type="hidden" name="{FIELD}" value="{form_token(request)}">'


def with_cookie(request: Request, response: R) -> R:
    """The page's response, setting the cookie its forms' token needs."""
    token = getattr(request.state, "csrf_token", None)
    if token is not None and request.cookies.get(COOKIE) != token:
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/dashboard")
    return response


def check(request: Request, form: dict[str, list[str]]) -> None:
    """A form post's token: present, equal to the cookie's, and signed here; else 403."""
    sent = (form.get(FIELD) or [""])[0]
    cookie = request.cookies.get(COOKIE, "")
    if not sent or not hmac.compare_digest(sent, cookie) or not _valid(request, sent):
        raise Forbidden("the form's security token is missing or does not match this browser's; reload the page "
                        "and submit the form again", code="csrf_token_invalid")

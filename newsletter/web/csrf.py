"""CSRF protection for the forms: a signed double-submit token.

A page with a form sets a random nonce in an HttpOnly, SameSite=Strict cookie and puts
a signed ``[nonce, form]`` in a hidden field. A POST is accepted only when the field's
signature is good, it is recent, it names this form, and its nonce is the cookie's: a
page on another site can neither read nor set that cookie.

The one-click unsubscribe POST (RFC 8058) is exempt by design: mail providers send it
without a cookie, and the subscriber token in its URL is what authorises it.
"""

from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "newsletter_csrf"
FIELD = "csrf"
MAX_AGE_S = 6 * 3600
_NONCE_LENGTH = 22  # secrets.token_urlsafe(16)


class Csrf:
    def __init__(self, secret: str, list_id: str, *, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=f"newsletter/{list_id}/csrf")
        self._secure = secure

    @staticmethod
    def _cookie(request: Request) -> str | None:
        value = request.cookies.get(COOKIE, "")
        return value if len(value) == _NONCE_LENGTH else None

    def nonce(self, request: Request) -> tuple[str, bool]:
        """The request's nonce, and whether it is new (and so must be set as a cookie)."""
        existing = self._cookie(request)
        if existing:
            return existing, False
        return secrets.token_urlsafe(16), True

    def token(self, nonce: str, form: str) -> str:
        return self._serializer.dumps([nonce, form])

    def set_cookie(self, response: Response, nonce: str) -> None:
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=self._secure,
            path="/",
        )

    def valid(self, request: Request, form: str, token: object) -> bool:
        """True when ``token`` (the hidden field) is good for this form and this browser."""
        cookie = self._cookie(request)
        if cookie is None or not isinstance(token, str):
            return False
        try:
            value = self._serializer.loads(token, max_age=MAX_AGE_S)
        except BadSignature:
            return False
        return (
            isinstance(value, list)
            and len(value) == 2
            and value[1] == form
            and isinstance(value[0], str)
            and hmac.compare_digest(value[0], cookie)
        )

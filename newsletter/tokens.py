"""Signed tokens for links in emails (itsdangerous).

A token names one subscriber for one purpose (unsubscribe, preferences, confirm) on one
list, and is bound to the subscriber's current address: it stops working if the row is
purged or the address changes. A forged, truncated or other-list token raises TokenError.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from newsletter.errors import TokenError

Purpose = Literal["unsubscribe", "preferences", "confirm", "editor-review"]
CONFIRM_MAX_AGE_S = 7 * 24 * 3600


def _fingerprint(email: str) -> str:
    return hashlib.sha256(email.casefold().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Signer:
    """Signs and reads tokens for one list (its ``list_id`` goes into the salt)."""

    secret: str
    list_id: str

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        if not self.secret:
            raise TokenError("no secret configured: set NEWSLETTER_SECRET or [newsletter] secret")
        return URLSafeTimedSerializer(self.secret, salt=f"newsletter/{self.list_id}/{purpose}")

    def sign(self, purpose: Purpose, subscriber_id: int, email: str) -> str:
        return self._serializer(purpose).dumps([subscriber_id, _fingerprint(email)])

    def read(self, purpose: Purpose, token: str, max_age: int | None = None) -> tuple[int, str]:
        """(subscriber id, address fingerprint); check it with :meth:`matches`."""
        try:
            value = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], int)
            or not isinstance(value[1], str)
        ):
            raise TokenError("this link is not valid")
        return value[0], value[1]

    @staticmethod
    def matches(fingerprint: str, email: str) -> bool:
        return fingerprint == _fingerprint(email)

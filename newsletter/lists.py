"""The list's identity, shared by the mailer (List-Id, List-Unsubscribe) and the web side.

``list_id(config)`` is the RFC 2919 list identifier without angle brackets, a slug of the
title and the domain of the From address: ``latin-america-weekly.example.org``. It is also
the salt of every signed link, so a token made for one list never works on another.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from newsletter.config import Config
from newsletter.tokens import Signer

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _NOT_SLUG.sub("-", text.casefold()).strip("-") or "newsletter"


def from_domain(config: Config) -> str:
    """The domain of ``[newsletter] from`` (lower-cased), or ``localhost``."""
    address = parseaddr(config.sender)[1]
    domain = address.rpartition("@")[2].strip().strip(".").lower()
    return domain or "localhost"


def list_id(config: Config) -> str:
    """``<slug of the title>.<from domain>``: for the List-Id header and token salts."""
    return f"{_slug(config.title)}.{from_domain(config)}"


def list_id_header(config: Config) -> str:
    """The List-Id header value: ``Latin America Weekly <latin-america-weekly.example.org>``."""
    return f"{config.title} <{list_id(config)}>"


def signer(config: Config) -> Signer:
    """The signer for this list's links (unsubscribe, preferences, confirm)."""
    return Signer(config.secret, list_id(config))


def _url(config: Config, path: str) -> str:
    return config.newsletter.base_url.rstrip("/") + path


def unsubscribe_url(config: Config, subscriber_id: int, email: str) -> str:
    """The one-click unsubscribe link (GET shows a page, POST unsubscribes: RFC 8058)."""
    return _url(config, "/unsubscribe/" + signer(config).sign("unsubscribe", subscriber_id, email))


def preferences_url(config: Config, subscriber_id: int, email: str) -> str:
    """The link to the subscriber's preferences page."""
    return _url(config, "/preferences/" + signer(config).sign("preferences", subscriber_id, email))


def confirm_url(config: Config, subscriber_id: int, email: str) -> str:
    """The double opt-in link sent by the subscribe form."""
    return _url(config, "/confirm/" + signer(config).sign("confirm", subscriber_id, email))

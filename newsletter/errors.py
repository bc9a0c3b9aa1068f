"""Every error newsletter raises on purpose, and the exit code the CLI gives it.

    NewsletterError                 exit 1 unless said otherwise
    ├── ConfigError                 exit 2: bad or missing newsletter.toml, bad option
    ├── FeedError                   one feed failed; the others go on
    │   ├── FetchError              network, HTTP status, size cap, timeout
    │   └── ParseError              the bytes are not a feed we can read
    ├── StoreError                  the database refused or is out of date
    ├── DeliveryError               SMTP
    │   └── SMTPUnavailableError    the server cannot be reached at all; nothing is marked sent
    ├── TokenError                  a signed token is forged, truncated or for another list
    └── InputError                  exit 1: rejected input (a CSV row, an address)

Anything else is a bug and surfaces with a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the run finished but some work failed (a feed, a delivery, a row)
EXIT_USAGE = 2  # bad usage or configuration: nothing was done


class NewsletterError(Exception):
    """Base of every error newsletter raises on purpose."""

    exit_code = EXIT_FAILURE


class ConfigError(NewsletterError):
    """The configuration file or a command-line option is wrong."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, path: object = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path is not None:
            where = f"{path}: "
        if key:
            where += f"[{key}] "
        super().__init__(f"{where}{message}")


class FeedError(NewsletterError):
    """One feed could not be fetched or read."""


class FetchError(FeedError):
    """The feed could not be fetched (network, HTTP status, size cap, timeout)."""


class ParseError(FeedError):
    """The fetched bytes are not a feed we can read."""


class StoreError(NewsletterError):
    """The database refused an operation or needs `newsletter init`."""


class DeliveryError(NewsletterError):
    """A message could not be delivered."""


class SMTPUnavailableError(DeliveryError):
    """The SMTP server cannot be reached; nothing was marked sent."""


class TokenError(NewsletterError):
    """A signed token is forged, truncated, expired or for another list."""


class InputError(NewsletterError):
    """Input was rejected (a CSV row, an email address, an unknown name)."""

"""Optional DKIM signing (dkimpy), ``[dkim] domain, selector, key_file``.

List-Unsubscribe *and* List-Unsubscribe-Post are signed: receivers offer one-click
unsubscribe (RFC 8058) only when both are covered, and dkimpy leaves the latter out of
its defaults. Each message differs (To, Message-ID, links), so each is signed; dkimpy's
RSA is pure Python (~2-5 ms for a 2048-bit key), the one per-message cost that is not
negligible when signing is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy

from newsletter.config import DkimSection
from newsletter.errors import ConfigError

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


@dataclass(frozen=True)
class Signer:
    """Signs serialized messages; :meth:`sign` returns the message with its signature."""

    domain: str
    selector: str
    key: bytes

    @classmethod
    def from_config(cls, section: DkimSection, base: Path | None = None) -> Signer:
        path = Path(section.key_file)
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the DKIM key: {exc.strerror}", key="dkim.key_file"
            ) from None
        signer = cls(section.domain, section.selector, key)
        signer.sign(b"From: a@b.c\r\n\r\nkey check\r\n")  # a bad key fails now, not per message
        return signer

    def sign(self, message: bytes) -> bytes:
        try:
            header = dkimpy.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                self.key,
                include_headers=[h.lower().encode() for h in SIGNED_HEADERS],
            )
        except dkimpy.DKIMException as exc:
            raise ConfigError(f"DKIM signing failed: {exc}", key="dkim") from None
        return bytes(header) + message

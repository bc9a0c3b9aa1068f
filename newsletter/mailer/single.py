"""One message outside any issue (a confirmation, an editors' review link), sent at once.

The bulk sender (``smtp``/``send``) keeps connections and a delivery log; these messages
need neither, only the same ``[smtp]`` settings and the same error classes.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from newsletter.config import Config
from newsletter.errors import DeliveryError, SMTPUnavailableError


async def send_one(
    config: Config, message: EmailMessage, *, recipients: Sequence[str] | None = None
) -> None:
    """Send ``message`` through ``[smtp]``; ``recipients`` default to its To header.

    Raises :class:`SMTPUnavailableError` when the server cannot be reached and
    :class:`DeliveryError` when it refuses the message.
    """
    smtp = config.smtp
    try:
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=(config.smtp_password or None) if smtp.username else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            tls_context=ssl.create_default_context() if smtp.security != "none" else None,
            timeout=smtp.timeout,
            sender=parseaddr(config.sender)[1] or None,
            recipients=list(recipients) if recipients is not None else None,
        )
    except (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        aiosmtplib.SMTPTimeoutError,
        OSError,
    ) as exc:
        raise SMTPUnavailableError(f"cannot reach {smtp.host}:{smtp.port}: {exc}") from None
    except aiosmtplib.SMTPException as exc:
        raise DeliveryError(f"the server refused {message['Subject']!r}: {exc}") from None

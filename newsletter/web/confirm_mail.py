"""The double opt-in email: one plain-text message with the confirmation link.

Sent directly with aiosmtplib using ``[smtp]``; the bulk digest sender lives in
``newsletter.mailer`` and has nothing to do with this one message.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from newsletter.config import Config
from newsletter.errors import DeliveryError, SMTPUnavailableError
from newsletter.jinja import environment
from newsletter.lists import from_domain
from newsletter.tokens import CONFIRM_MAX_AGE_S


def build_message(config: Config, to: str, url: str) -> EmailMessage:
    """The confirmation message for ``to`` with the link ``url``."""
    body = (
        environment()
        .get_template("web/confirm_mail.txt.j2")
        .render(
            title=config.title,
            url=url,
            home=config.newsletter.base_url.rstrip("/") + "/",
            days=CONFIRM_MAX_AGE_S // 86400,
        )
    )
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = to
    msg["Subject"] = f"Confirm your subscription to {config.title}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=from_domain(config))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


async def send_confirmation(config: Config, to: str, url: str) -> None:
    """Send it; SMTPUnavailableError if the server cannot be reached, DeliveryError if it
    refuses the message."""
    smtp = config.smtp
    try:
        await aiosmtplib.send(
            build_message(config, to, url),
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=(config.smtp_password or None) if smtp.username else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout,
        )
    except (
        aiosmtplib.SMTPConnectError,
        aiosmtplib.SMTPServerDisconnected,
        aiosmtplib.SMTPTimeoutError,
        OSError,
    ) as exc:
        raise SMTPUnavailableError(f"cannot reach {smtp.host}:{smtp.port}: {exc}") from None
    except aiosmtplib.SMTPException as exc:
        raise DeliveryError(f"the server refused the confirmation mail: {exc}") from None

"""The double opt-in email: one plain-text message with the confirmation link.

Sent at once with ``mailer.single.send_one``; the bulk digest sender has nothing to do
with this one message.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from newsletter.config import Config
from newsletter.jinja import environment
from newsletter.lists import from_domain
from newsletter.mailer.single import send_one
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
    await send_one(config, build_message(config, to, url))

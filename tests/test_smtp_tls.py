"""SMTP over TLS against a real aiosmtpd server: STARTTLS, implicit TLS, AUTH and refusals.

trustme's throwaway CA signs the server's certificate. The sender trusts it the way an admin
trusts a private relay's CA: through the environment (SSL_CERT_FILE) for the configured path,
or an explicit SmtpSettings.tls_context.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from newsletter.config import parse_config
from newsletter.errors import DeliveryError, SMTPUnavailableError
from newsletter.mailer.smtp import Outcome, SenderPool, SmtpSettings
from tests.smtpserver import SmtpServer

MESSAGE = b"From: digest@example.org\r\nTo: ana@example.net\r\nSubject: tls\r\n\r\nHola.\r\n"
LOGINS = {"digest": "s3cret pass"}


def configured(tmp_path: Path, port: int, security: str, password: str) -> SmtpSettings:
    """SmtpSettings as `newsletter send` builds them from newsletter.toml and the environment."""
    doc = {
        "newsletter": {"database": "sqlite:///subscribers.db", "secret": "s"},
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "username": "digest",
            "concurrency": 1,
        },
    }
    env = {"NEWSLETTER_SMTP_PASSWORD": password}
    return SmtpSettings.from_config(parse_config(doc, tmp_path / "newsletter.toml", env=env))


def direct(
    port: int, security: str, tls: ssl.SSLContext | None, concurrency: int = 1
) -> SmtpSettings:
    """SmtpSettings made in code, with the right login; `tls` None trusts the default roots."""
    assert security in ("starttls", "tls")
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        security="tls" if security == "tls" else "starttls",
        username="digest",
        password=LOGINS["digest"],
        concurrency=concurrency,
        tls_context=tls,
    )


async def test_starttls_then_login_from_the_configuration(
    tmp_path: Path, server_tls: ssl.SSLContext, ca_in_environment: None
) -> None:
    async with SmtpServer(starttls=server_tls, logins=LOGINS) as server:
        settings = configured(tmp_path, server.port, "starttls", LOGINS["digest"])
        async with SenderPool(settings) as pool:
            result = await pool.deliver("digest@example.org", "ana@example.net", MESSAGE)
    assert result.outcome is Outcome.DELIVERED
    [received] = server.handler.received
    assert received.secure and received.rcpt_tos == ("ana@example.net",)
    assert server.handler.logins == ["digest"]


async def test_implicit_tls_then_login(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    async with (
        SmtpServer(implicit_tls=server_tls, logins=LOGINS) as server,
        SenderPool(direct(server.port, "tls", client_tls, concurrency=2)) as pool,
    ):
        for to in ("ana@example.net", "luis@example.net"):
            result = await pool.deliver("digest@example.org", to, MESSAGE)
            assert result.outcome is Outcome.DELIVERED
    assert [r.secure for r in server.handler.received] == [True, True]
    assert server.handler.logins == ["digest", "digest"]  # one login per connection


async def test_a_wrong_password_is_a_clear_refusal(
    tmp_path: Path, server_tls: ssl.SSLContext, ca_in_environment: None
) -> None:
    async with SmtpServer(starttls=server_tls, logins=LOGINS) as server:
        settings = configured(tmp_path, server.port, "starttls", "not the password")
        with pytest.raises(DeliveryError, match="refused the login: 535"):
            async with SenderPool(settings):
                pass
    assert server.handler.logins == []
    assert server.handler.received == []


async def test_an_unknown_certificate_authority_is_refused(
    server_tls: ssl.SSLContext,
) -> None:
    async with SmtpServer(starttls=server_tls, logins=LOGINS) as server:
        settings = direct(server.port, "starttls", None)  # the test CA is not a default root
        with pytest.raises(SMTPUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
            async with SenderPool(settings):
                pass
    assert server.handler.logins == []


async def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(
    client_tls: ssl.SSLContext,
) -> None:
    """security = "starttls" means the password and the mail never travel in clear."""
    async with SmtpServer(logins=LOGINS) as server:  # plain, no STARTTLS
        with pytest.raises(SMTPUnavailableError, match="STARTTLS"):
            async with SenderPool(direct(server.port, "starttls", client_tls)):
                pass
    assert server.handler.logins == []
    assert server.handler.received == []

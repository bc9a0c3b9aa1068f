"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, port 0) that can misbehave on cue.

    async with SmtpServer() as server:
        server.handler.script["a@x.org"] = ["451 4.7.1 greylisted"]  # then accepted
        server.handler.refuse["b@x.org"] = "550 5.1.1 no such user"
        server.handler.drop_at = {3}   # the 3rd DATA: connection dropped, nothing stored
        ... send to ("127.0.0.1", server.port) ...
        server.handler.received        # [Received(mail_from, rcpt_tos, data, secure)]

``SmtpServer(starttls=context)`` offers STARTTLS, ``SmtpServer(implicit_tls=context)`` speaks
TLS from the first byte (port 465 style), and ``logins={"user": "password"}`` offers AUTH
(only over TLS); ``handler.logins`` lists who logged in.

It runs on the test's own event loop (``loop.create_server``), so a test can also drive a
``newsletter`` subprocess against it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    secure: bool = False  # arrived over TLS

    def parse(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Handler:
    """Accepts everything unless told otherwise."""

    received: list[Received] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=dict)  # replies to RCPT, in turn
    refuse: dict[str, str] = field(default_factory=dict)  # a reply to RCPT, every time
    drop_at: set[int] = field(default_factory=set)  # numbers of DATA commands (1-based)
    data_commands: int = 0
    connections: int = 0
    delay: float = 0.0  # seconds before answering DATA
    logins: list[str] = field(default_factory=list)  # successful AUTH logins, in order
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    async def wait_received(self, n: int) -> None:
        """Return once ``n`` messages have been received."""
        if len(self.received) >= n:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, future))
        await future

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        turns = self.script.get(address)
        if turns:
            return turns.pop(0)
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.data_commands += 1
        if self.data_commands in self.drop_at:
            server.transport.abort()
            return "250 OK (never seen: the connection is gone)"
        if self.delay:
            await asyncio.sleep(self.delay)
        data = envelope.original_content or envelope.content
        secure = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(data), secure)
        )
        for n, future in self._waiters:
            if len(self.received) >= n and not future.done():
                future.set_result(None)
        return "250 2.0.0 OK queued"

    def by_recipient(self) -> Counter[str]:
        return Counter(r for m in self.received for r in m.rcpt_tos)


class SmtpServer:
    def __init__(
        self,
        handler: Handler | None = None,
        *,
        smtputf8: bool = True,
        data_size_limit: int | None = None,  # a number: SIZE is offered and enforced
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        logins: dict[str, str] | None = None,
    ) -> None:
        self.handler = handler or Handler()
        self.smtputf8 = smtputf8
        self.data_size_limit = data_size_limit
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.logins = logins
        self.server: asyncio.Server | None = None
        self.port = 0
        self._sessions: list[SMTP] = []

    def _protocol(self) -> SMTP:
        self.handler.connections += 1
        session = SMTP(
            self.handler,
            hostname="smtp.test",
            data_size_limit=self.data_size_limit,
            enable_SMTPUTF8=self.smtputf8,
            tls_context=self.starttls,
            authenticator=self._authenticate if self.logins is not None else None,
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS every byte is encrypted
            auth_require_tls=self.implicit_tls is None,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.append(session)
        return session

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.logins is not None
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        if self.logins.get(login) != password:
            return AuthResult(success=False, handled=False)
        self.handler.logins.append(login)
        return AuthResult(success=True)

    async def __aenter__(self) -> SmtpServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self._protocol, "127.0.0.1", 0, ssl=self.implicit_tls
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.abort()
            await self.server.wait_closed()
            self.server = None


# --- helpers for the mailer tests -------------------------------------------------------


def add_active_subscriber(session: Any, email: str, **fields: Any) -> Any:
    """A confirmed subscriber row (the subscribers module is another stage's)."""
    from newsletter.models import Subscriber, SubscriberStatus

    sub = Subscriber(email=email, status=SubscriberStatus.ACTIVE, **fields)
    session.add(sub)
    session.flush()
    return sub


def add_items(session: Any, now: Any, specs: list[tuple[str, str, str]]) -> None:
    """Stored items from (source, country, title); fetched and published at ``now``."""
    from newsletter.models import Item

    for n, (source, country, title) in enumerate(specs):
        session.add(
            Item(
                source=source,
                identity=f"{source}-{n}",
                link=f"https://{source.lower().replace(' ', '')}.example/{n}",
                canonical=f"https://{source.lower().replace(' ', '')}.example/{n}",
                title=title,
                excerpt=f"About {title}.",
                published=now,
                fetched_at=now,
                countries=country,
                primary_country=country,
            )
        )
    session.flush()

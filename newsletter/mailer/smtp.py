"""The sender pool: ``smtp.concurrency`` connections, each reused for many messages.

I/O sits behind two tiny protocols, :class:`Connection` (send one message) and
:class:`Connector` (open one), with aiosmtplib as the one real implementation; tests run
it against a real aiosmtpd server. :meth:`SenderPool.deliver` never raises for SMTP
trouble: it returns a :class:`Result`:

    delivered   the server said 250 (the reply is kept for the log)
    failed      a permanent 5xx reply (552 excepted: RFC 5321 treats it as 452)
    deferred    4xx replies or lost connections, still failing after the retries

4xx replies and dropped connections are retried with exponential backoff, reconnecting
as needed; the connection slot is given back during the wait. When no connection can be
opened at all the pool is *unavailable*: :meth:`SenderPool.__aenter__` raises
:class:`~newsletter.errors.SMTPUnavailableError`, and mid-run every later call returns
``deferred`` at once so that the caller can stop and leave the rest pending.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Literal, Protocol

import aiosmtplib

from newsletter.config import Config
from newsletter.errors import DeliveryError, SMTPUnavailableError
from newsletter.mailer.ratelimit import DomainLimiter, GlobalLimits, RateLimiter

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    security: Security = "none"
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    concurrency: int = 8
    rate: float | None = None  # messages per second over all connections
    domain_rate: Mapping[str, float] = field(default_factory=dict)  # per receiving domain
    tls_context: ssl.SSLContext | None = None  # tests: trust a self-signed certificate

    @classmethod
    def from_config(cls, config: Config) -> SmtpSettings:
        s = config.smtp
        return cls(
            host=s.host,
            port=s.port,
            security=s.security,
            username=s.username,
            password=config.smtp_password,
            timeout=s.timeout,
            concurrency=s.concurrency,
            rate=s.rate,
            domain_rate=dict(s.domain_rate),
        )


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # per message within one run
    base: float = 1.0  # seconds before the 2nd attempt; doubles each time
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based)."""
        return float(min(self.cap, self.base * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class TemporaryFailure(Exception):
    """A 4xx (or 552) reply: try again later."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class PermanentFailure(Exception):
    """A 5xx reply: this recipient will not get this message."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class ConnectionLost(Exception):
    """The connection dropped or timed out; reconnect and retry."""


Ready = asyncio.Future[None]  # see Connection.send


class Connection(Protocol):
    @property
    def usable(self) -> bool: ...
    async def send(
        self, sender: str, recipient: str, message: bytes, ready: Ready | None = None
    ) -> Reply:
        """Deliver or raise TemporaryFailure, PermanentFailure or ConnectionLost.

        ``ready``, when given, is awaited after DATA's 354 and before the message is
        written: the envelope is sent while the caller finishes other work, and the
        server cannot accept the message before ``ready`` is done.
        """
        ...

    async def close(self) -> None: ...

    def abort(self) -> None:
        """Drop the connection now (a send was interrupted mid-transaction)."""
        ...


Connector = Callable[[], Awaitable[Connection]]


def classify(code: int, text: str) -> Exception:
    reply = Reply(code, text)
    if code >= 500 and code != 552:
        return PermanentFailure(reply)
    return TemporaryFailure(reply)


def data_payload(message: bytes) -> bytes:
    """What follows DATA (RFC 5321 4.5.2): the message, leading dots doubled, then ".".

    ``message`` must already have CRLF line endings (our messages are built that way).
    aiosmtplib's ``sendmail`` rescans every message with regular expressions to fix line
    endings (twice when the server offers SIZE) and to double dots: about 2 ms of CPU per
    60 KB message, as much as the whole SMTP exchange. One C-speed ``replace`` does the
    dot-doubling here in ~0.06 ms.
    """
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class AiosmtplibConnection:
    """One aiosmtplib session; many messages go through it, one transaction at a time.

    MAIL and RCPT go through aiosmtplib's commands; the message goes as one write of
    :func:`data_payload` after DATA's 354, then the 250 is read (see that function for
    why not ``sendmail``).
    """

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client

    @property
    def usable(self) -> bool:
        return self.client.is_connected

    async def send(
        self, sender: str, recipient: str, message: bytes, ready: Ready | None = None
    ) -> Reply:
        client = self.client
        utf8 = not recipient.isascii()
        if utf8 and not client.supports_extension("smtputf8"):
            raise PermanentFailure(Reply(553, "the server does not accept SMTPUTF8 addresses"))
        options = ["SMTPUTF8"] if utf8 else []
        if client.supports_extension("size"):
            options.append(f"SIZE={len(message)}")  # RFC 1870: as sent, before dot-doubling
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await client.mail(sender, options=options, encoding=encoding)
            await client.rcpt(recipient, encoding=encoding)
            reply = await client.execute_command(b"DATA")
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            if ready is not None:
                await ready
            if client.protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            client.protocol.write(data_payload(message))
            reply = await client.protocol.read_response(timeout=client.timeout)
            if reply.code != 250:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except aiosmtplib.SMTPServerDisconnected as exc:
            client.close()
            raise ConnectionLost(str(exc) or "connection lost") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 400 or exc.code == 503:  # out of step: the session is not trustworthy
                await self.close()
                raise ConnectionLost(f"{exc.code} {exc.message}") from None
            await self._reset()
            raise classify(exc.code, exc.message) from None
        except (aiosmtplib.SMTPTimeoutError, ConnectionError, OSError) as exc:
            await self.close()
            raise ConnectionLost(str(exc) or type(exc).__name__) from None
        return Reply(reply.code, reply.message)

    async def _reset(self) -> None:
        """RSET after a refusal, so the next transaction starts clean."""
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.client.close()

    def abort(self) -> None:
        self.client.close()

    async def close(self) -> None:
        if self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()
        else:
            self.client.close()


def aiosmtplib_connector(settings: SmtpSettings) -> Connector:
    """Open one connection: TLS or STARTTLS and AUTH as configured."""

    async def connect() -> Connection:
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=settings.tls_context,
            username=settings.username or None,
            password=(settings.password or None) if settings.username else None,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:  # the extensions (SIZE, SMTPUTF8) are known now
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise DeliveryError(
                f"SMTP {settings.host}:{settings.port} refused the login: {exc.code} {exc.message}"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise ConnectionLost(f"{exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise ConnectionLost(str(exc) or type(exc).__name__) from None
        return AiosmtplibConnection(client)

    return connect


class Outcome(Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    DEFERRED = "deferred"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reply: str
    attempts: int


class SenderPool:
    """``concurrency`` connection slots, opened up front and reopened on demand.

    Each attempt waits for the domain limits (this process's, then the global one)
    before it takes a connection, and for the rate limits right before it starts.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        connector: Connector | None = None,
        retry: RetryPolicy = RetryPolicy(),
        global_limits: GlobalLimits | None = None,
    ) -> None:
        self.settings = settings
        self.connect = connector or aiosmtplib_connector(settings)
        self.retry = retry
        self.limiter = RateLimiter(settings.rate)
        self.domain_limiter = DomainLimiter(settings.domain_rate)
        self.global_limits = global_limits  # shared with the other senders (ratelimit.py)
        self._slots: asyncio.Queue[Connection | None] = asyncio.Queue()
        self._open: set[Connection] = set()
        self.unavailable = False
        self._connect_failures = 0

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    async def __aenter__(self) -> SenderPool:
        n = self.settings.concurrency
        results = await asyncio.gather(*(self.connect() for _ in range(n)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in results:
            if not isinstance(r, BaseException):
                self._open.add(r)
                self._slots.put_nowait(r)
        if len(errors) == n:
            for e in errors:
                if isinstance(e, DeliveryError):
                    raise e
            raise SMTPUnavailableError(
                f"cannot reach the SMTP server {self.where}: {errors[0]}; nothing was sent"
            )
        for _ in errors:
            self._slots.put_nowait(None)  # opened on first use
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        opened, self._open = list(self._open), set()
        await asyncio.gather(*(c.close() for c in opened), return_exceptions=True)

    async def deliver(
        self, sender: str, recipient: str, message: bytes, ready: Ready | None = None
    ) -> Result:
        """Deliver with retries; ``ready`` as in :meth:`Connection.send`."""
        reply = ""
        for attempt in range(1, self.retry.attempts + 1):
            if self.unavailable:
                return Result(Outcome.DEFERRED, reply or "SMTP server unavailable", attempt - 1)
            await self.domain_limiter.wait(recipient)
            if self.global_limits is not None:
                await self.global_limits.wait_domain(recipient)
            conn = await self._slots.get()
            in_step = False  # False while a transaction may be half done
            try:
                if conn is None or not conn.usable:
                    conn = await self._reopen(conn)
                await self.limiter.wait()
                if self.global_limits is not None:
                    await self.global_limits.wait_rate()
                answer = await conn.send(sender, recipient, message, ready)
                in_step = True
                return Result(Outcome.DELIVERED, str(answer), attempt)
            except PermanentFailure as exc:
                in_step = True
                return Result(Outcome.FAILED, str(exc.reply), attempt)
            except TemporaryFailure as exc:
                in_step = True
                reply = str(exc.reply)
            except ConnectionLost as exc:
                reply = f"connection lost: {exc}"
            finally:
                if conn is not None and not in_step:
                    conn.abort()  # cancelled mid-transaction: never reuse this session
                    self._open.discard(conn)
                self._slots.put_nowait(conn if conn is not None and conn.usable else None)
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt))
        return Result(Outcome.DEFERRED, reply, self.retry.attempts)

    async def _reopen(self, old: Connection | None) -> Connection:
        if old is not None:
            self._open.discard(old)
            await old.close()
        try:
            conn = await self.connect()
        except ConnectionLost:
            self._connect_failures += 1
            if self._connect_failures >= self.retry.attempts * self.settings.concurrency:
                self.unavailable = True
            raise
        self._connect_failures = 0
        self._open.add(conn)
        return conn

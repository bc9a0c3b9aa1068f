"""The DATA path: dot-doubling done once per message, the ``ready`` gate, SIZE, SMTPUTF8.

The pool sends MAIL and RCPT through aiosmtplib and writes the message itself after
DATA's 354 (``smtp.data_payload``); these tests check it against a real aiosmtpd server,
which undoes the dot-doubling, so what arrives must equal what was sent.
"""

from __future__ import annotations

import asyncio

import pytest

from newsletter.mailer.smtp import Outcome, RetryPolicy, SenderPool, SmtpSettings, data_payload
from tests.smtpserver import SmtpServer

DOTTED = (
    b"From: a@example.org\r\nSubject: dots\r\n\r\n"
    b".starts with a dot\r\n"
    b"..two dots\r\n"
    b"middle . dot\r\n"
    b".\r\n"  # a lone dot: would end DATA early if not doubled
    b"last line without a break"
)


@pytest.mark.parametrize(
    ("message", "payload"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a\r\nb", b"a\r\nb\r\n.\r\n"),
        (b".a\r\n.\r\n..b\r\n", b"..a\r\n..\r\n...b\r\n.\r\n"),
        (b"x.y\r\n", b"x.y\r\n.\r\n"),
    ],
)
def test_data_payload_doubles_leading_dots_and_terminates(message: bytes, payload: bytes) -> None:
    assert data_payload(message) == payload


def settings(port: int, concurrency: int = 1) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, concurrency=concurrency, timeout=10)


async def test_dotted_lines_arrive_as_sent() -> None:
    async with SmtpServer() as server, SenderPool(settings(server.port)) as pool:
        result = await pool.deliver("a@example.org", "b@example.net", DOTTED)
    assert result.outcome is Outcome.DELIVERED
    assert result.reply.startswith("250")
    [received] = server.handler.received
    assert received.data == DOTTED + b"\r\n"  # DATA content always ends with CRLF


async def test_the_message_is_not_written_before_ready() -> None:
    async with SmtpServer() as server, SenderPool(settings(server.port)) as pool:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sending = asyncio.create_task(
            pool.deliver("a@example.org", "b@example.net", DOTTED, ready=ready)
        )
        await asyncio.sleep(0.3)  # MAIL, RCPT and DATA are answered by now
        assert not sending.done()
        assert server.handler.received == []
        ready.set_result(None)
        result = await sending
    assert result.outcome is Outcome.DELIVERED
    assert len(server.handler.received) == 1


async def test_a_failed_ready_aborts_the_transaction_and_propagates() -> None:
    async with SmtpServer() as server, SenderPool(settings(server.port)) as pool:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ready.set_exception(RuntimeError("the log could not be written"))
        with pytest.raises(RuntimeError, match="log could not be written"):
            await pool.deliver("a@example.org", "b@example.net", DOTTED, ready=ready)
        # the pool reconnects for the next message
        result = await pool.deliver("a@example.org", "c@example.net", DOTTED)
    assert result.outcome is Outcome.DELIVERED
    assert [r.rcpt_tos for r in server.handler.received] == [("c@example.net",)]


async def test_size_is_declared_and_an_oversized_message_is_refused() -> None:
    once = RetryPolicy(attempts=1)
    async with (
        SmtpServer(data_size_limit=len(DOTTED) + 10) as server,
        SenderPool(settings(server.port), retry=once) as pool,
    ):
        fits = await pool.deliver("a@example.org", "b@example.net", DOTTED)
        big = await pool.deliver("a@example.org", "c@example.net", DOTTED + b"x" * 100)
        after = await pool.deliver("a@example.org", "d@example.net", DOTTED)
    assert fits.outcome is Outcome.DELIVERED
    # 552 (size exceeded) is temporary by RFC 5321; with no retries left it is deferred
    assert big.outcome is Outcome.DEFERRED and big.reply.startswith("552")
    assert after.outcome is Outcome.DELIVERED  # the session was reset and goes on
    assert [r.rcpt_tos for r in server.handler.received] == [("b@example.net",), ("d@example.net",)]


async def test_an_international_address_needs_smtputf8() -> None:
    async with SmtpServer(smtputf8=False) as server, SenderPool(settings(server.port)) as pool:
        result = await pool.deliver("a@example.org", "josé@example.net", DOTTED)
        plain = await pool.deliver("a@example.org", "jose@example.net", DOTTED)
    assert result.outcome is Outcome.FAILED
    assert "SMTPUTF8" in result.reply
    assert plain.outcome is Outcome.DELIVERED
    async with SmtpServer() as server, SenderPool(settings(server.port)) as pool:
        result = await pool.deliver("a@example.org", "josé@example.net", DOTTED)
    assert result.outcome is Outcome.DELIVERED
    assert server.handler.received[0].rcpt_tos == ("josé@example.net",)

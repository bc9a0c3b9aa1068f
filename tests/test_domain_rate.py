"""`[smtp] domain_rate`: messages to one receiving domain are paced; the others are not."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from newsletter.config import parse_config
from newsletter.errors import ConfigError
from newsletter.mailer.smtp import Outcome, SenderPool, SmtpSettings
from tests.smtpserver import Handler, SmtpServer

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass
class TimedHandler(Handler):
    """Records when each message arrived, by recipient domain."""

    times: list[tuple[str, float]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        domain = envelope.rcpt_tos[0].rpartition("@")[2]
        self.times.append((domain, asyncio.get_running_loop().time()))
        return await super().handle_DATA(server, session, envelope)


async def test_one_domain_is_paced_and_the_others_are_not() -> None:
    rate = 10.0  # gmail.com: one start every 0.1 s
    handler = TimedHandler()
    async with SmtpServer(handler) as server:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            concurrency=4,
            timeout=10,
            domain_rate={"gmail.com": rate},
        )
        recipients = [f"g{n}@GMail.com" for n in range(11)]
        recipients += [f"o{n}@example.org" for n in range(20)]
        async with SenderPool(settings) as pool:
            results = await asyncio.gather(
                *(pool.deliver("a@example.org", r, MESSAGE) for r in recipients)
            )
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    gmail = sorted(t for d, t in handler.times if d.lower() == "gmail.com")
    other = sorted(t for d, t in handler.times if d == "example.org")
    assert len(gmail) == 11 and len(other) == 20
    # 11 starts at 0.1 s intervals span 1 s; generous bounds either way
    assert gmail[-1] - gmail[0] >= 0.8
    for start in gmail:  # never a burst: at most 5 (+2 slack) in any half second
        assert sum(start <= t < start + 0.5 for t in gmail) <= rate * 0.5 + 2
    # the other domain did not wait behind gmail.com
    assert other[-1] < gmail[-1]


async def test_global_rate_still_holds_with_domain_rates() -> None:
    handler = TimedHandler()
    async with SmtpServer(handler) as server:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            concurrency=3,
            timeout=10,
            rate=20.0,
            domain_rate={"gmail.com": 1000.0},
        )
        recipients = [f"g{n}@gmail.com" for n in range(6)] + [f"o{n}@x.org" for n in range(5)]
        async with SenderPool(settings) as pool:
            await asyncio.gather(*(pool.deliver("a@example.org", r, MESSAGE) for r in recipients))
    times = sorted(t for _, t in handler.times)
    assert len(times) == 11 and times[-1] - times[0] >= 10 * 0.05 * 0.8


def test_config_reads_domain_rates(tmp_path: Path) -> None:
    data = {"smtp": {"rate": 50, "domain_rate": {"GMail.com": 5, "yahoo.com.": 2.5}}}
    config = parse_config(data, tmp_path / "newsletter.toml", env={})
    assert config.smtp.domain_rate == {"gmail.com": 5.0, "yahoo.com": 2.5}
    assert SmtpSettings.from_config(config).domain_rate == {"gmail.com": 5.0, "yahoo.com": 2.5}
    with pytest.raises(ConfigError, match=r"smtp\.domain_rate"):
        parse_config({"smtp": {"domain_rate": {"gmail.com": 0}}}, tmp_path / "n.toml", env={})

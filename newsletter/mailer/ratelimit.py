"""Send rate limits, kept apart from the SMTP pool (smtp.py) that waits on them.

    RateLimiter     ``smtp.rate``: starts per second from this process
    DomainLimiter   ``smtp.domain_rate``: the same per receiving domain, this process

Both hold for this process alone, in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


def recipient_domain(recipient: str) -> str:
    return recipient.rpartition("@")[2].lower().rstrip(".")


class RateLimiter:
    """At most ``rate`` starts per second, evenly spaced, over every connection."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class DomainLimiter:
    """A :class:`RateLimiter` per receiving domain named in ``smtp.domain_rate``.

    Its wait comes before a connection is taken, so a slow domain never holds a connection
    the other domains could use; the messages of one domain start no closer together
    than ``1 / rate`` on average (a start may only come later than its turn, never earlier).
    """

    def __init__(self, rates: Mapping[str, float]) -> None:
        self._limiters = {domain.lower(): RateLimiter(rate) for domain, rate in rates.items()}

    async def wait(self, recipient: str) -> None:
        if not self._limiters:
            return
        limiter = self._limiters.get(recipient_domain(recipient))
        if limiter is not None:
            await limiter.wait()

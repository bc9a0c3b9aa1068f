"""Failed-login throttling for the editor pages: a guessed password costs a lot of guesses.

`FailureLimit` counts failures per key (a client address, an account) in a sliding window;
a key over its limit is refused, without checking the password (so without Argon2's CPU),
until its oldest failure leaves the window. Counts live in this process's memory: they reset
on restart, and `newsletter serve` runs one process. Keys are bounded, so a flood of
addresses cannot grow memory without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_KEYS", "FailureLimit", "LoginThrottle"]

MAX_KEYS = 10_000  # keys remembered per limit; the least recently failed are forgotten first


@dataclass
class FailureLimit:
    limit: int
    window: float  # seconds
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0.0
        return max(0.0, failures[-self.limit] + self.window - self.clock())

    def failed(self, key: str) -> None:
        failures = self._recent(key)
        failures.append(self.clock())  # the deque keeps the last `limit`: all that counts
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key, deque(maxlen=self.limit))
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


@dataclass
class LoginThrottle:
    """Per client address (slows one attacker trying many accounts) and per account (slows
    many addresses trying one account); a successful login clears the account's count."""

    per_client: FailureLimit = field(default_factory=lambda: FailureLimit(20, 15 * 60))
    per_account: FailureLimit = field(default_factory=lambda: FailureLimit(5, 15 * 60))

    def retry_after(self, client: str, account: str) -> float:
        return max(self.per_client.retry_after(client), self.per_account.retry_after(account))

    def failed(self, client: str, account: str) -> None:
        self.per_client.failed(client)
        self.per_account.failed(account)

    def succeeded(self, account: str) -> None:
        self.per_account.clear(account)

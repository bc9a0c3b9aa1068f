"""FailureLimit and LoginThrottle with a clock the test moves (newsletter.web.throttle)."""

from __future__ import annotations

import pytest

from newsletter.web import throttle
from newsletter.web.throttle import FailureLimit, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_at_the_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limit = FailureLimit(3, 60, clock=clock)
    for step in range(3):
        assert limit.retry_after("k") == 0
        limit.failed("k")
        clock.now += 10 * (step + 1)  # failures at 1000, 1010, 1030
    assert limit.retry_after("other") == 0
    assert limit.retry_after("k") == pytest.approx(1000 + 60 - clock.now)  # 0 at 1060
    clock.now = 1060
    assert limit.retry_after("k") == 0
    limit.failed("k")  # three in the window again: 1010, 1030, 1060
    assert limit.retry_after("k") == pytest.approx(10)


def test_clear_forgets_a_key() -> None:
    limit = FailureLimit(2, 60, clock=Clock())
    limit.failed("k")
    limit.failed("k")
    assert limit.retry_after("k") > 0
    limit.clear("k")
    assert limit.retry_after("k") == 0


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_KEYS", 100)
    limit = FailureLimit(1, 60, clock=Clock())
    for n in range(1000):
        limit.failed(f"client-{n}")
    assert len(limit._failures) == 100
    assert limit.retry_after("client-999") > 0  # the most recent are kept
    assert limit.retry_after("client-0") == 0


def test_login_throttle_success_clears_the_account_not_the_client() -> None:
    clock = Clock()
    logins = LoginThrottle(FailureLimit(3, 60, clock=clock), FailureLimit(2, 60, clock=clock))
    logins.failed("10.0.0.1", "ana")
    logins.succeeded("ana")
    logins.failed("10.0.0.1", "ana")
    assert logins.retry_after("10.0.0.2", "ana") == 0  # one account failure since the success
    logins.failed("10.0.0.1", "luis")
    assert logins.retry_after("10.0.0.1", "someone") > 0  # three from this client
    assert logins.retry_after("10.0.0.2", "luis") == 0

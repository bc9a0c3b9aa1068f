"""How the program runs its coroutines: on uvloop's event loop when it is installed.

Every command that does network I/O (fetch, send, schedule) goes through `run`. uvloop is a
dependency on Linux and macOS: fetching is CPU-bound in the event loop once the feeds answer
quickly, and uvloop does the loop's own work (sockets, transports, timers) in C. Where it is
missing (Windows) or set aside (`NEWSLETTER_EVENT_LOOP=asyncio`, to rule it out when chasing a
bug), the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from newsletter.errors import ConfigError

__all__ = ["EVENT_LOOP_ENV", "loop_factory", "run"]

EVENT_LOOP_ENV = "NEWSLETTER_EVENT_LOOP"  # "uvloop" (the default when installed) or "asyncio"

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """What `run` makes its loop with; a ConfigError for an unknown NEWSLETTER_EVENT_LOOP."""
    choice = os.environ.get(EVENT_LOOP_ENV, "").strip().lower() or "uvloop"
    if choice not in ("uvloop", "asyncio"):
        raise ConfigError(f"{EVENT_LOOP_ENV}={choice!r}: expected 'uvloop' or 'asyncio'")
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:  # not built for this platform: the standard loop does the same work
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, on the loop `loop_factory` chooses."""
    try:
        factory = loop_factory()
    except ConfigError:
        main.close()  # never started: close it, or Python warns that it was never awaited
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)

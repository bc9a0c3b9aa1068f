"""The lease: one holder at a time, on a real SQLite file, with threads racing for it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from newsletter import lease
from newsletter.store import open_engine

NOW = datetime(2024, 3, 11, 6, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def test_acquire_is_exclusive_until_expiry(engine: Engine) -> None:
    assert lease.acquire(engine, "schedule", "a", TTL, NOW)
    assert not lease.acquire(engine, "schedule", "b", TTL, NOW + TTL - timedelta(seconds=1))
    holder = lease.holder(engine, "schedule", NOW)
    assert holder is not None
    assert (holder.owner, holder.expires_at) == ("a", NOW + TTL)
    # expired: b takes it over, and a can no longer renew or release it
    assert lease.acquire(engine, "schedule", "b", TTL, NOW + TTL)
    assert not lease.renew(engine, "schedule", "a", TTL, NOW + TTL)
    assert not lease.release(engine, "schedule", "a")
    holder = lease.holder(engine, "schedule", NOW + TTL)
    assert holder is not None and holder.owner == "b"


def test_reacquire_and_renew_extend_our_own_lease(engine: Engine) -> None:
    assert lease.acquire(engine, "schedule", "a", TTL, NOW)
    assert lease.acquire(engine, "schedule", "a", TTL, NOW + timedelta(minutes=5))
    assert lease.renew(engine, "schedule", "a", TTL, NOW + timedelta(minutes=9))
    holder = lease.holder(engine, "schedule", NOW)
    assert holder is not None
    assert holder.expires_at == NOW + timedelta(minutes=19)


def test_release_frees_it_at_once(engine: Engine) -> None:
    assert lease.acquire(engine, "schedule", "a", TTL, NOW)
    assert lease.release(engine, "schedule", "a")
    assert lease.holder(engine, "schedule", NOW) is None
    assert lease.acquire(engine, "schedule", "b", TTL, NOW)


def test_names_are_independent(engine: Engine) -> None:
    assert lease.acquire(engine, "schedule", "a", TTL, NOW)
    assert lease.acquire(engine, "other", "b", TTL, NOW)
    assert lease.holder(engine, "nothing", NOW) is None


def test_expired_holder_is_not_reported(engine: Engine) -> None:
    assert lease.acquire(engine, "schedule", "a", TTL, NOW)
    assert lease.holder(engine, "schedule", NOW + TTL) is None


def test_owner_ids_differ() -> None:
    assert lease.new_owner() != lease.new_owner()


@pytest.mark.parametrize("held_by_dead_owner", [False, True])
def test_threads_racing_on_one_file_get_one_winner(db_url: str, held_by_dead_owner: bool) -> None:
    if held_by_dead_owner:
        setup = open_engine(db_url)
        assert lease.acquire(setup, "schedule", "dead", TTL, NOW - 2 * TTL)
        setup.dispose()
    racers = 8
    barrier = threading.Barrier(racers)
    won: list[str] = []
    errors: list[BaseException] = []

    def race(owner: str) -> None:
        engine = open_engine(db_url)  # one engine per racer: like separate processes
        try:
            barrier.wait(timeout=10)
            if lease.acquire(engine, "schedule", owner, TTL, NOW):
                won.append(owner)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=race, args=(f"racer-{i}",)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(won) == 1
    check = open_engine(db_url)
    holder = lease.holder(check, "schedule", NOW)
    check.dispose()
    assert holder is not None and holder.owner == won[0]

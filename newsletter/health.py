"""Per-source fetch state and health: what to send back (ETag, Last-Modified), what went wrong."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from newsletter.config import SourceEntry
from newsletter.models import SourceState


def sync_states(session: Session, sources: Sequence[SourceEntry]) -> dict[str, SourceState]:
    """One state row per configured source; an edited URL starts afresh."""
    states = {s.name: s for s in session.exec(select(SourceState))}
    for source in sources:
        state = states.get(source.name)
        if state is None:
            state = SourceState(name=source.name, config_url=source.url, url=source.url)
        elif state.config_url != source.url:
            # The admin changed the URL: forget the old validators and the 410.
            state.config_url = state.url = source.url
            state.etag = state.last_modified = None
            state.disabled = False
            state.consecutive_failures = 0
        states[source.name] = state
        session.add(state)
    return states


def due(state: SourceState, now: datetime) -> bool:
    """False for a source that answered 410, or asked us to wait (429 Retry-After)."""
    if state.disabled:
        return False
    return state.retry_after is None or state.retry_after <= now


def record_success(state: SourceState, now: datetime, *, new_items: int) -> None:
    state.last_fetch = state.last_success = now
    state.consecutive_failures = 0
    state.items_seen += new_items
    state.retry_after = None


def record_failure(state: SourceState, now: datetime, error: str) -> None:
    state.last_fetch = state.last_error_at = now
    state.last_error = error
    state.consecutive_failures += 1

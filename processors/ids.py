"""Event ids as text."""
from __future__ import annotations

from typing import Any

from schemas.events import Envelope

_last_key: tuple[Any, str] = (None, "")


def event_key(event: Envelope) -> str:
    """The event id as text, which effects and records quote several times per event.

    Cached for the event being folded (a UUID's ``str`` is not free); the pair is
    swapped as one tuple, so a fold on another thread can never read a foreign id."""
    global _last_key
    cached = _last_key
    if cached[0] is event:
        return cached[1]
    key = str(event.event_id)
    _last_key = (event, key)
    return key

"""Durations as pushorch reads them, from 30, 1.5, '30s', '2m', '1h30m', '500ms' (pure; no pydantic:
the connection settings read them, and `exec` must not pay for the schema's models)."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+)ms)?\s*$"
)


def parse_duration(value: Any) -> float:
    """Seconds from 30, 1.5, '30s', '2m', '1h30m', '500ms'."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '2m', '1h30m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds + millis / 1000
    raise ValueError(f"{value!r} is not a duration (a number of seconds or a string like '30s', '2m', '1h30m')")

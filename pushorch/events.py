"""Event records the executor emits; the reporter turns them into output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pushorch.actions import Action

Status = Literal["changed", "failed", "unreachable", "diff"]


@dataclass(frozen=True, slots=True)
class Event:
    """One action finished (changed or failed), a host was found unreachable, or a file's diff (--diff)."""

    host: str
    status: Status
    action: Action | None = None
    message: str = ""
    duration: float = 0.0

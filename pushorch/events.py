"""Event records the executor emits; the reporter turns them into output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pushorch.actions import Action

Status = Literal["changed", "failed", "unreachable"]


@dataclass(frozen=True, slots=True)
class Event:
    """One action finished (changed or failed), or a host was found unreachable."""

    host: str
    status: Status
    action: Action | None = None
    message: str = ""
    duration: float = 0.0

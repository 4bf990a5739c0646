"""Event records the executor emits; the reporter turns them into output."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from pushorch.actions import Action

# started: a host action begins (the live view shows it); changed/failed/unreachable: an action ended;
# diff: a file's diff (--diff); progress: a gate's news;
# batch: a rollout batch starts (host ""); reverted: a host is back on its old version;
# aborted/stopped/skipped: a rollout ended early (host "").
Status = Literal[
    "started",
    "changed",
    "failed",
    "unreachable",
    "diff",
    "progress",
    "batch",
    "reverted",
    "aborted",
    "stopped",
    "skipped",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Something happened on a host (or, with host "", to a rollout as a whole)."""

    host: str
    status: Status
    action: Action | None = None
    message: str = ""
    duration: float = 0.0
    at: float = field(default_factory=time.time)  # when it happened (epoch seconds): history's time

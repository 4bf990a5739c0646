"""What the runtime asks before each mutating step: does this run still hold the fleet lock?"""

from __future__ import annotations

from typing import Protocol


class Guard(Protocol):
    """`lost()` answers from what the lock's renewals found (no I/O); `confirm()` asks the lock host now."""

    def lost(self) -> str | None: ...

    async def confirm(self) -> str | None: ...


class Unguarded:
    """For runs without a fleet lock (--check, plan, pushorch_lock_host: none)."""

    def lost(self) -> str | None:
        return None

    async def confirm(self) -> str | None:
        return None


UNGUARDED = Unguarded()

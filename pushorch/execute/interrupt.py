"""A run asked to stop by SIGINT or SIGTERM: the first signal lets every step under way end (each host
on one version: the new one gated, or the old one back) and starts no other; the second stops at once.

A signal while nothing is under way (observing, waiting for the lock, planning) stops at once: there
is nothing to finish. Either way the run's `finally` blocks release the fleet lock.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pushorch.actions import ReplaceContainer
from pushorch.events import Event
from pushorch.execute.guard import Guard

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(slots=True)
class Interrupt:
    """What the signals asked, and which replacements are under way (what a forced stop leaves)."""

    signum: int = 0
    forced: bool = False
    in_flight: bool = False  # a plan is executing: steps are under way
    under_way: dict[str, str] = field(default_factory=dict)  # host -> its replacement's last step

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # as a shell reports a process a signal ended: 130, 143

    def reason(self) -> str | None:
        return f"interrupted by {self.name}" if self.signum else None

    def follow(self, event: Event) -> None:
        """Keep the last step of each replacement under way (what a second signal would leave)."""
        if not isinstance(event.action, ReplaceContainer) or not event.host:
            return
        a = event.action
        if event.status == "progress":
            self.under_way[event.host] = f"{a.service} {a.old_version or '-'} -> {a.version}: {event.message}"
        elif event.status in ("changed", "failed", "unreachable", "reverted"):
            self.under_way.pop(event.host, None)

    def left(self) -> str:
        """What a stop at once left, host by host."""
        if not self.forced or not self.under_way:
            return f"{self.reason()}: stopped while no step was under way"
        steps = "; ".join(f"{h}: {what}" for h, what in sorted(self.under_way.items()))
        return (
            f"{self.reason()} twice: stopped at once, in the middle of {steps}. "
            "Those hosts may run the old and the new container, or neither: the next apply gates and converges them"
        )


class Stoppable:
    """The run's guard with the interrupt in front: once a signal came, no step starts."""

    def __init__(self, inner: Guard, interrupt: Interrupt) -> None:
        self.inner, self.interrupt = inner, interrupt

    def lost(self) -> str | None:
        return self.interrupt.reason() or self.inner.lost()

    async def confirm(self) -> str | None:
        return self.interrupt.reason() or await self.inner.confirm()


async def interruptible(work: Awaitable[T], interrupt: Interrupt, emit: Callable[[Event], None]) -> T:
    """Await `work` with SIGINT and SIGTERM handled as the module says; a stop at once cancels it
    (asyncio.CancelledError reaches the caller)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None or threading.current_thread() is not threading.main_thread():
        return await work  # signals reach the main thread only

    def on_signal(signum: int) -> None:
        first = not interrupt.signum
        if first:
            interrupt.signum = signum
        if first and interrupt.in_flight:
            emit(
                Event(
                    "",
                    "progress",
                    None,
                    f"{interrupt.name}: finishing the steps under way (each host ends on one version), "
                    f"starting no other; {interrupt.name} again stops at once",
                )
            )
            return
        interrupt.forced = not first
        task.cancel()

    for number in SIGNALS:
        loop.add_signal_handler(number, on_signal, number)
    try:
        return await work
    finally:
        for number in SIGNALS:
            loop.remove_signal_handler(number)

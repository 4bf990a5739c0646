"""The deploy history written as a run goes: each service change a pass makes is appended to its
host's history (`fleet/history.py` builds the lines) as soon as it happens, over the run's connections."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from pushorch.actions import ReplaceContainer
from pushorch.errors import PushorchError
from pushorch.events import Event
from pushorch.fleet import history
from pushorch.fleet.lock import owner_record
from pushorch.transport import Transport


class Journal:
    """Appends each service change to its host's history as it happens, not at the end of the run: a
    controller killed later (SIGKILL, a lost laptop) leaves the record of what it already changed.
    One writer per host keeps the lines in order and takes what queued meanwhile in one write."""

    def __init__(self, transports: Mapping[str, Transport], command: tuple[str, ...]) -> None:
        owner = owner_record(0, command)
        self.by, self.command = f"{owner['user']}@{owner['controller']}", str(owner["command"])
        self.transports = transports
        self.queued: dict[str, list[dict[str, str]]] = {}
        self.writers: dict[str, asyncio.Task[None]] = {}
        self.written: set[int] = set()  # replacements whose step wrote its own record (id of the action)

    def step_record(self, action: ReplaceContainer) -> tuple[tuple[str, ...], bytes] | None:
        """The record of a replacement that succeeded, for the step to write together with the removal
        of its ungated mark (execute/replace.py): then no kill falls between the two. Its event is
        not written again."""
        lines = history.records([Event(action.host, "changed", action)], self.by, self.command).get(action.host)
        if not lines:
            return None
        self.written.add(id(action))
        return history.append(lines)

    def add(self, event: Event) -> None:
        if event.status == "changed" and id(event.action) in self.written:
            self.written.discard(id(event.action))
            return
        lines = history.records([event], self.by, self.command).get(event.host)
        if not lines or event.host not in self.transports:
            return
        self.queued.setdefault(event.host, []).extend(lines)
        if event.host not in self.writers or self.writers[event.host].done():
            self.writers[event.host] = asyncio.ensure_future(self._write(event.host))

    async def _write(self, host: str) -> None:
        while lines := self.queued.pop(host, []):
            argv, data = history.append(lines)
            with contextlib.suppress(PushorchError):  # best effort: a host that went away keeps no line
                await self.transports[host].run(argv, stdin=data, timeout=30)

    async def flush(self) -> None:
        await asyncio.gather(*self.writers.values(), return_exceptions=True)

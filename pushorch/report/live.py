"""apply's live view on a terminal (rich): what each host is doing now, each rollout's batch, each
gate's time so far, redrawn a few times a second; finished changes scroll above it as plain lines.
Pipes, --json and cron get the plain line-per-change output instead (report.ApplyReporter)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pushorch.actions import ReplaceContainer
from pushorch.secret import scrub

if TYPE_CHECKING:
    from pushorch.events import Event


class _Scrubbed:
    """A file for rich: every byte it writes is scrubbed of known secret values, like all output."""

    def __init__(self) -> None:
        self._out = sys.stdout  # the terminal itself, whatever sys.stdout is later

    def write(self, text: str) -> int:
        self._out.write(scrub(text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._out.fileno()


class InFlight:
    """The live region: one row per rollout (its batch) and per busy host (what, for how long)."""

    def __init__(self) -> None:
        self.batches: dict[str, str] = {}  # service -> "batch 2 of 3 (canary): lab-2"
        self.doing: dict[str, tuple[str, float, float]] = {}  # host -> (what, since (monotonic), deadline or 0)

    def __rich__(self) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        for service, batch in sorted(self.batches.items()):
            grid.add_row(Text("rollout", style="bold"), Text(f"{service}: {batch}"))
        now = time.monotonic()
        for host, (what, since, deadline) in sorted(self.doing.items()):
            left = f", fails in {max(0.0, deadline - (now - since)):.0f}s" if deadline else ""
            grid.add_row(Text(host, style="cyan"), Text(f"{what}  {now - since:.1f}s{left}"))
        return grid


class LiveApply:
    """Feeds apply's events into the live region; `line` prints above it."""

    def __init__(self) -> None:
        self.console = Console(file=_Scrubbed(), force_terminal=True)  # type: ignore[arg-type]
        self.view = InFlight()
        self._live: Live | None = None

    def line(self, text: str) -> None:
        self._start()
        self.console.print(Text(text.rstrip("\n")), soft_wrap=True)

    def event(self, event: Event, line: str) -> None:
        """Update the view for `event`; `line` is its plain rendering, printed above when it is news."""
        self._start()
        view = self.view
        service, _, rest = event.message.partition(": ")
        if not event.host:
            if event.status == "batch" and not rest.startswith("reverting"):
                view.batches[service] = rest
            elif event.status in ("aborted", "stopped"):
                view.batches.pop(service, None)
            self.line(line)
        elif event.status == "started":
            view.doing[event.host] = (event.action.describe() if event.action else "working", time.monotonic(), 0.0)
        elif event.status == "progress":
            # A gate counts down to its deadline (it passes as soon as it is healthy for min_healthy_time).
            deadline = event.action.gate.deadline if isinstance(event.action, ReplaceContainer) else 0.0
            passing = "passed" in event.message or "FAILED" in event.message
            view.doing[event.host] = (event.message, time.monotonic() - event.duration, 0.0 if passing else deadline)
            if "passed" in event.message or "FAILED" in event.message:
                self.line(line)
        else:
            view.doing.pop(event.host, None)
            self.line(line)

    def stop(self) -> None:
        if self._live is not None:
            self.view.batches.clear()
            self.view.doing.clear()
            self._live.stop()
            self._live = None

    def _start(self) -> None:
        if self._live is None:
            self._live = Live(
                self.view,
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,  # every line goes through self.console already
                redirect_stderr=False,
            )
            self._live.start()

"""The controller's own terminal for an interactive command (`exec -it`): raw keystrokes in, the
remote screen's bytes out, the terminal's mode restored however the command ends.

The bytes are passed through as they are: an interactive session shows what the remote side prints,
so it is not scrubbed of secret values like every other output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import termios
import tty
from typing import Any


class TtyTerminal:
    def __init__(self) -> None:
        self.term = os.environ.get("TERM", "xterm")
        columns, rows = shutil.get_terminal_size()
        self.size = (columns, rows)
        self._in, self._out = sys.stdin.fileno(), sys.stdout.fileno()
        self._saved: list[Any] | None = None

    def __enter__(self) -> TtyTerminal:
        if os.isatty(self._in):
            self._saved = termios.tcgetattr(self._in)
            tty.setraw(self._in)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._in, termios.TCSADRAIN, self._saved)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[bytes] = loop.create_future()

        def take() -> None:
            if not ready.done():
                ready.set_result(os.read(self._in, 4096))

        loop.add_reader(self._in, take)
        try:
            return await ready
        finally:
            loop.remove_reader(self._in)

    def write(self, data: bytes) -> None:
        os.write(self._out, data)

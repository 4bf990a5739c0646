"""A background sampler for lab tests: calls `probe` every `every` seconds while a run lasts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Sampler:
    """`with Sampler(probe, 0.1) as s: ...` then `s.samples` holds every probe's result, in order."""

    def __init__(self, probe: Callable[[], Any], every: float) -> None:
        self.probe, self.every = probe, every
        self.samples: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.probe())
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

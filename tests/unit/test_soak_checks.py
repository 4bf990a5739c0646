"""The soak's own checks (bench/soak/invariants.py), on what a look returned: no lab needed."""

from __future__ import annotations

import subprocess
from typing import Any

from bench.soak.invariants import still_left


class _Hosts:
    """Answers `kill -0 PID` as if only the given pids still ran."""

    def __init__(self, alive: set[str]) -> None:
        self.alive = alive

    def sh(self, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        pid = script.split()[2]
        return subprocess.CompletedProcess([host], 0 if pid in self.alive else 1, "", "")


def test_a_process_gone_once_the_plan_beside_the_looks_ended_was_that_plan_s_own_probe() -> None:
    # Seed 254786 r110/r291: the `plan` run beside the at-rest looks had a `docker ps` running.
    found = [
        "lab-2: process left: 14096 docker ps -aq --no-trunc --filter label=pushorch.service",
        "lab-3: process left: 777 sleep 30",
        "lab-1: temporary file left: /var/lib/pushorch/x.tmp",
    ]
    world: Any = _Hosts({"777"})
    assert still_left(world, found) == found[1:]

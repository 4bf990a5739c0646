"""shell.wait_gone in a real shell, on real processes of this machine: the wait of a HAProxy reload
for its old workers and the soak's check of a killed dockerd."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pushorch.commands.shell import wait_gone


def _wait(pids: list[int], seconds: int) -> tuple[int, float]:
    began = time.monotonic()
    script = f"old='{' '.join(map(str, pids))}'; {wait_gone('$old', seconds)}"
    done = subprocess.run(["sh", "-c", script], check=False)
    return done.returncode, time.monotonic() - began


def test_an_ended_process_left_a_zombie_counts_as_gone() -> None:
    """Its parent (this test) has not reaped it: `kill -0` would still answer. The first version's
    pattern took the tab after `State:` for a state and counted the zombie alive (found in review)."""
    zombie = subprocess.Popen(["true"])
    time.sleep(0.3)
    assert "zombie" in Path(f"/proc/{zombie.pid}/status").read_text()
    assert _wait([zombie.pid], 3)[0] == 0
    zombie.wait()


def test_it_waits_for_a_process_that_ends_and_gives_up_on_one_that_does_not() -> None:
    short, long = subprocess.Popen(["sleep", "0.5"]), subprocess.Popen(["sleep", "30"])
    try:
        status, took = _wait([short.pid], 5)
        assert status == 0 and 0.3 < took < 4
        status, took = _wait([short.pid, long.pid], 1)
        assert status == 1 and took >= 1
        assert _wait([], 1)[0] == 0
    finally:
        long.kill()
        long.wait()
        short.wait()

"""shell.wait_gone in a real shell, on real processes of this machine: the wait of a HAProxy reload
for its old workers and the soak's check of a killed dockerd."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pushorch.commands.shell import wait_gone


def _wait(pids: list[int], seconds: int) -> int:
    script = f"old='{' '.join(map(str, pids))}'; {wait_gone('$old', seconds)}"
    return subprocess.run(["sh", "-c", script], check=False).returncode


def test_an_ended_process_left_a_zombie_counts_as_gone() -> None:
    """Its parent (this test) has not reaped it: `kill -0` would still answer. The first version's
    pattern took the tab after `State:` for a state and counted the zombie alive (found in review)."""
    zombie = subprocess.Popen(["true"])
    time.sleep(0.3)
    assert "zombie" in Path(f"/proc/{zombie.pid}/status").read_text()
    assert _wait([zombie.pid], 3) == 0
    zombie.wait()


def test_it_waits_for_a_process_that_ends_and_gives_up_on_one_that_does_not() -> None:
    short, long = subprocess.Popen(["sleep", "0.5"]), subprocess.Popen(["sleep", "30"])
    try:
        assert short.poll() is None  # still running when the wait begins
        assert _wait([short.pid], 5) == 0
        assert short.poll() is not None  # it returned once the process had ended, not before
        assert _wait([short.pid, long.pid], 1) == 1
        assert long.poll() is None  # it gave up on the one still running
        assert _wait([], 1) == 0
    finally:
        long.kill()
        long.wait()
        short.wait()

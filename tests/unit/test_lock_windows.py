"""Lock windows (fake transport, fake clocks): nothing a rollout does — hooks, jobs, the fleet record —
happens outside a confirmed lock, and a controller that slept through its TTL acts on nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from pushorch.actions import JobRun, Plan, Rollout
from pushorch.connection import ConnectionSettings
from pushorch.execute import execute
from pushorch.fleet import commands as lock_cmd
from pushorch.fleet.lock import FleetLock
from pushorch.fleet.record import FleetState
from pushorch.transport.fake import FakeTransport, Script
from tests.unit.test_executor import TakenOver
from tests.unit.test_rollout import _host, _replace

JOB = JobRun("a", "migrate", ("docker", "run", "--rm", "--name", "web-job-migrate", "img:2", "migrate"))


def test_a_lock_lost_before_the_rollout_runs_no_hook_and_no_job(tmp_path: Path) -> None:
    ran = tmp_path / "hook-ran"
    hook = (("pre_deploy", ("sh", "-c", f"touch {ran}")),)
    for rollout in (Rollout("web", ((_replace("a"),),), jobs=(JOB,)), Rollout("web", ((_replace("a"),),), hooks=hook)):
        hosts = {"a": _host("a")}
        guard = TakenOver(after=1)  # asked once after the (empty) host actions; lost when the rollout asks
        done = asyncio.run(execute(Plan(rollouts=(rollout,)), dict(hosts), lambda _: None, guard))
        report = done.rollouts[0]
        assert "taken over by b@ops" in report.stopped and done.lock_lost, report
        assert hosts["a"].calls == [] and not ran.exists()  # no job container, no hook, no replacement


class Clock:
    """(monotonic, suspend-counting) seconds; a suspended laptop moves only the second."""

    def __init__(self) -> None:
        self.mono, self.wall = 100.0, 1_000_000.0

    def __call__(self) -> tuple[float, float]:
        return self.mono, self.wall


def _lock(script: Script, clock: Clock) -> FleetLock:
    return FleetLock("lab-1", FakeTransport(ConnectionSettings("lab-1", "lab-1"), script), ttl=30, clock=clock)


def _held(lock: FleetLock) -> None:
    async def go() -> None:
        await lock.acquire()
        lock._stop_renewing()

    asyncio.run(go())


def test_a_ttl_that_passed_while_suspended_is_a_lost_lock_even_if_a_renewal_would_succeed() -> None:
    clock = Clock()
    script = Script().answer("pushorch-lock", 0, "ACQUIRED\n")
    lock = _lock(script, clock)
    _held(lock)
    assert lock.lost() is None
    clock.mono += 1  # the laptop slept: monotonic time stood still, CLOCK_BOOTTIME moved 40 s
    clock.wall += 40
    why = lock.lost()
    assert why is not None and "not renewed for 30s" in why and "counting suspend" in why
    script.answers.insert(0, ("renew|RENEWED", 0, "RENEWED\n", ""))
    assert asyncio.run(lock.confirm()) == why  # not resurrected: another run may have held it meanwhile


def test_the_fleet_record_is_not_written_after_the_lock_is_lost() -> None:
    clock = Clock()
    script = Script().answer("ACQUIRE|take", 0, "ACQUIRED\n")
    lock = _lock(script, clock)
    _held(lock)
    script.answers.insert(0, (r"RENEWED", 3, 'LOST\n{"user": "b", "controller": "ops"}\n', ""))
    assert asyncio.run(lock.write_record(FleetState(5.0, {"lab-2": 1.0}))) is False
    assert lock.lost() is not None and "taken over by b@ops" in str(lock.lost())
    transport = lock.transport
    assert isinstance(transport, FakeTransport) and not any("WRITTEN" in c for c in transport.calls)


def test_the_record_write_checks_the_token_on_the_lock_host(tmp_path: Path) -> None:
    d, record = str(tmp_path / "lock"), str(tmp_path / "fleet.json")
    subprocess.run(lock_cmd.acquire("{}", "tok-a", 600, d), check=True, capture_output=True)
    ours = subprocess.run(lock_cmd.write_state("tok-a", d, record), input="{1}\n", text=True, capture_output=True)
    assert (ours.returncode, ours.stdout, Path(record).read_text()) == (0, "WRITTEN\n", "{1}\n")
    theirs = subprocess.run(lock_cmd.write_state("tok-b", d, record), input="{2}\n", text=True, capture_output=True)
    assert (theirs.returncode, theirs.stdout, Path(record).read_text()) == (3, "LOST\n", "{1}\n")

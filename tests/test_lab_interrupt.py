"""An interrupted run on the lab: SIGINT or SIGTERM during a pull, a drain (between stop and run) and a
gate lets the step under way finish, starts no other, releases the fleet lock, writes history and
exits 130/143; a second signal stops at once and says what it left, and the next apply gates what that
left instead of taking it for serving. After each, a plain apply converges and `rollback` still
reaches the old version."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.conftest import ROOT
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_faults import pulling_through
from tests.test_lab_rollout import _playbook, _running

pytestmark = pytest.mark.lab


class Run:
    """`pushorch apply` in its own process, its output lines read as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pushorch", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, seconds: float = 90) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.process.poll() is None, f"exited {self.process.returncode} before {text!r}: {self.out}"
                continue
            self.out.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} within {seconds}s: {self.out}")

    def finish(self, seconds: float = 120) -> tuple[int, str, str]:
        status = self.process.wait(seconds)
        time.sleep(0.2)  # the reader thread takes the last lines
        while not self.lines.empty():
            self.out.append(self.lines.get())
        assert self.process.stderr is not None
        return status, "".join(self.out), self.process.stderr.read()


def _apply_in_background(inventory: Path, tmp_path: Path, *args: str) -> Run:
    return Run("apply", "-i", str(inventory), "--lock-file", str(tmp_path / "run.lock"), *args)


def _no_lock_held(run_cli, inventory: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("lock", "status", "-i", str(inventory), "docker").out.strip() == "no fleet lock held"


def _history(run_cli, inventory: Path, service: str) -> list[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    shown = run_cli("history", "-i", str(inventory), "--json", service)
    return [(r["host"], r["from"], r["to"], r["result"]) for r in map(json.loads, shown.out.splitlines())]


def _then_apply_and_rollback(run_cli, inventory: Path, playbook: str, service: str) -> None:  # type: ignore[no-untyped-def]
    """What an operator does next: the plain apply converges, and the way back still goes back."""
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0, changes
    assert _running(inventory, service) == {h: ["v2"] for h in DOCKER_HOSTS}
    back = run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, service)
    assert back.status == 0, back.out + back.err
    assert _running(inventory, service) == {h: ["v1"] for h in DOCKER_HOSTS}


def test_a_signal_during_a_pull_lets_it_finish_and_replaces_nothing(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "ir-p", 18150)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    # lab-2 must pull v2, slowly: the shim says when the pull began, then waits.
    _sh(inventory, "rm -f /tmp/ir-pulling", "lab-2")
    with pulling_through(inventory, "lab-2", "ir-p", "touch /tmp/ir-pulling; sleep 4"):
        run = _apply_in_background(inventory, tmp_path, "-e", "v=v2", playbook)
        # On the host: until the shim says the pull began (bounded there, so a run that never pulls fails here).
        began = "timeout 60 sh -c 'until test -e /tmp/ir-pulling; do sleep 0.1; done' && echo pulling"
        assert _sh(inventory, began, "lab-2") == {"lab-2": "pulling\n"}, run.finish()
        run.process.send_signal(signal.SIGTERM)
        status, out, err = run.finish()
    assert status == 143, out + err
    assert "interrupted by SIGTERM" in out
    assert _running(inventory, "ir-p") == {h: ["v1"] for h in DOCKER_HOSTS}  # no rollout started
    _no_lock_held(run_cli, inventory)
    _then_apply_and_rollback(run_cli, inventory, playbook, "ir-p")


@pytest.mark.parametrize(
    ("number", "moment", "port"),
    [(signal.SIGINT, "drain: ", 18151), (signal.SIGTERM, "gate ", 18152), (signal.SIGINT, "config: ", 18154)],
    ids=["sigint-during-the-drain", "sigterm-during-the-gate", "sigint-between-stop-and-run"],
)
def test_a_signal_mid_replacement_finishes_that_host_and_starts_no_other(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path, number: int, moment: str, port: int
) -> None:
    _, inventory = lab_inventory
    service = f"ir-{port}"
    playbook = _playbook(tmp_path, service, port, drain_delay="2s", min_healthy_time="2s")
    if moment == "config: ":  # a config file: its write is the step between the old one's stop and the run
        plays = json.loads(Path(playbook).read_text())
        plays[0]["services"][0]["volumes"] = [f"/etc/{service}:/etc/{service}:ro"]
        plays[0]["tasks"] = [{"name": "conf", "copy": {"dest": f"/etc/{service}/app.conf", "content": "{{ v }}\n"}}]
        Path(playbook).write_text(json.dumps(plays))
    assert _apply(run_cli, inventory, playbook)[0] == 0
    run = _apply_in_background(inventory, tmp_path, "-e", "v=v2", playbook)
    line = run.wait_for(moment)
    host = line.split(" | ")[0]
    run.process.send_signal(number)
    status, out, err = run.finish()
    name = signal.Signals(number).name
    assert status == 128 + number, out + err
    assert f"interrupted by {name}: the steps under way finished, no other started" in out
    # The host under way ended on the new version, gated and registered; no other host was touched.
    assert _running(inventory, service) == {h: ["v2" if h == host else "v1"] for h in DOCKER_HOSTS}
    registered = json.loads(_http_through_ssh(inventory, host, 8500, "/v1/agent/services")[1])
    assert registered[f"{service}-{host}"]["Port"] == port  # registered again once its gate passed
    _no_lock_held(run_cli, inventory)
    assert (host, "v1", "v2", "changed") in _history(run_cli, inventory, service)  # history written
    _then_apply_and_rollback(run_cli, inventory, playbook, service)


def test_a_second_signal_stops_at_once_and_the_next_apply_gates_what_it_left(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "ir-f", 18153, healthy_deadline="20s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    # lab-1 gets the broken image: its gate can never pass; the operator gives up waiting.
    run = _apply_in_background(inventory, tmp_path, "-e", "v=v2", "-e", "bad_host=lab-1", playbook)
    run.wait_for("lab-1 | gate ")
    run.process.send_signal(signal.SIGTERM)
    run.wait_for("SIGTERM again stops at once")
    run.process.send_signal(signal.SIGTERM)
    status, out, err = run.finish()
    assert status == 143, out + err
    # At once: lab-1's gate was cut (a finished gate would have failed and put lab-1 back on v1).
    assert "stopped at once, in the middle of lab-1: ir-f v1 -> broken: gate" in err
    _no_lock_held(run_cli, inventory)
    assert _running(inventory, "ir-f")["lab-1"] == ["broken"]  # what it left: never gated
    # The next apply does not take the never-gated container for serving: it gates it again, the gate
    # fails, and lab-1 goes back to v1 (the container the interrupted run had stopped).
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", "-e", "bad_host=lab-1", playbook)
    assert status == 6, changes
    assert "never passed its gate" in json.dumps(changes)
    assert _running(inventory, "ir-f") == {h: ["v1"] for h in DOCKER_HOSTS}
    _then_apply_and_rollback(run_cli, inventory, playbook, "ir-f")

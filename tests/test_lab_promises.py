"""Failure paths that must keep "one version per host" on the lab: a step that hangs, a fleet lock
taken over mid-run. Each test breaks something real and asserts on what the hosts run and serve."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_faults import _consul_ids, _pushorch
from tests.test_lab_rollout import _playbook, _running

pytestmark = pytest.mark.lab


def _install_docker_shim(inventory: Path, host: str, verb: str, behaviour: str) -> None:
    """/usr/local/bin/docker (first on PATH) does `behaviour` for `docker VERB`, the real docker otherwise."""
    shim = f'#!/bin/sh\n[ "$1" = {verb} ] && {{ {behaviour}; }}\nexec /usr/bin/docker "$@"\n'
    _sh(inventory, f"printf '%s' {shlex.quote(shim)} > /usr/local/bin/docker && chmod +x /usr/local/bin/docker", host)


def test_a_docker_run_that_hangs_is_a_failed_step_and_the_old_version_serves_again(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "hang-a", 18101)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    _install_docker_shim(inventory, "lab-1", "run", "exec sleep 3600")
    try:
        status, changes, summary = _apply(run_cli, inventory, "-e", "v=v2", "--command-timeout", "5", playbook)
        assert status == 6, changes  # the rollout aborted on lab-1; not "unreachable" (exit 4)
        assert summary["unreachable"] == {}
        assert "did not start" in summary["failed"]["lab-1"] and "no result after 5s" in summary["failed"]["lab-1"]
        # lab-1 is back on v1, registered and serving; lab-2 and lab-3 were never touched.
        assert _running(inventory, "hang-a") == {h: ["v1"] for h in DOCKER_HOSTS}
        assert _http_through_ssh(inventory, "lab-1", 18101, "/version") == (200, b"v1\n")
        assert "hang-a-lab-1" in _consul_ids(inventory, "lab-1")
        # The timed-out command was ended on the host at its deadline, not left to start v2 later.
        assert _sh(inventory, "ps -eo args | grep -c '^sleep 3600' || true", "lab-1") == {"lab-1": "0\n"}
    finally:
        _sh(inventory, "rm -f /usr/local/bin/docker", "lab-1")
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0  # the next run converges
    assert _running(inventory, "hang-a") == {h: ["v2"] for h in DOCKER_HOSTS}


def test_a_run_whose_fleet_lock_is_taken_over_stops_before_its_next_step(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "take-a", 18102, min_healthy_time="3s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    lock_file = str(tmp_path / "take.lock")
    run = _pushorch("apply", "-i", str(inventory), "-e", "v=v2", "--lock-ttl", "30", "--lock-file", lock_file, playbook)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _running(inventory, "take-a", "lab-1").get("lab-1") != ["v2"]:
        time.sleep(0.2)
    # Another controller takes the lock over (as after `lock release`, or an expiry): lab-1 is the lock host.
    intruder = json.dumps({"user": "intruder", "controller": "other-box", "pid": 4242, "command": "pushorch apply"})
    lock = "/var/lib/pushorch/lock"
    _sh(inventory, f"printf '%s\\n' {shlex.quote(intruder)} > {lock}/owner.json && echo theirs > {lock}/token", "lab-1")
    status = run.wait(120)
    out, err = run.communicate()
    assert status == 7, out + err
    assert "taken over by intruder@other-box pid 4242" in err and "stopped before its next step" in err
    # lab-1 finished its batch (v2, gated); no later batch started; every host on one version.
    assert _running(inventory, "take-a") == {"lab-1": ["v2"], "lab-2": ["v1"], "lab-3": ["v1"]}
    assert "ABORTED" not in out  # not the version's fault: nothing reverted
    assert "theirs" in _sh(inventory, f"cat {lock}/token", "lab-1")["lab-1"]  # the new holder's lock stays
    assert run_cli("lock", "release", "-i", str(inventory), "lab-1").status == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    assert _running(inventory, "take-a") == {h: ["v2"] for h in DOCKER_HOSTS}

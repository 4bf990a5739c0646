"""Failure paths that must keep "one version per host" on the lab: a step that hangs, a fleet lock
taken over mid-run. Each test breaks something real and asserts on what the hosts run and serve."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from pushorch.lab.faults import paused
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_faults import _consul_ids, _pushorch, _reconcile, _replicated
from tests.test_lab_rollout import _playbook, _running, _wait_running

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
    _wait_running(inventory, "take-a", "lab-1", "v2")
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


def _placed(inventory: Path, service: str, hosts: str = "docker") -> list[str]:
    return sorted(h for h, versions in _running(inventory, service, hosts).items() if versions)


def test_a_paused_host_moves_only_after_failover_after_without_a_break(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    playbook = _replicated(tmp_path, "pause-a", 18103, failover={"after": "6s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = _placed(inventory, "pause-a")
    # The lock host (lab-1, first by name) keeps the fleet record; pause another one.
    victim = next(h for h in placed if h != "lab-1")
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    paused(lab, victim)
    try:
        for _ in range(2):  # two runs within the grace: nothing moves, however often cron runs
            held = _reconcile(run_cli, inventory, "-T", "2", playbook)
            assert held.status == 4 and f"{victim}: pause-a: unreachable for" in held.err, held.err
            assert _running(inventory, "pause-a", f"docker:!{victim}")[spare] == []
        time.sleep(6)
        moved = _reconcile(run_cli, inventory, "-T", "2", playbook)
        assert moved.status == 4 and f"failover from {victim}" in moved.out, moved.out + moved.err
        assert _running(inventory, "pause-a", f"docker:!{victim}")[spare] == ["v1"]
        # The move came only once failover.after had passed on the record's clock (the lock host's):
        # the stretch began at the first run that found the victim gone, confirmed by every run since.
        # (Lab hosts are containers of one machine: one clock for the record and the new container.)
        record = json.loads(_sh(inventory, "cat /var/lib/pushorch/fleet.json", "lab-1")["lab-1"])
        started = _sh(inventory, "date -d \"$(docker inspect -f '{{.Created}}' $(docker ps -q "
                      "--filter label=pushorch.service=pause-a))\" +%s", spare)[spare]  # fmt: skip
        assert float(started) - record["unreachable"][victim] >= 6, (record, started)
    finally:
        paused(lab, victim, False)
    back = _reconcile(run_cli, inventory, playbook)
    assert back.status == 0, back.out + back.err
    assert _running(inventory, "pause-a")[victim] == []  # its stale instance went: never twice


def test_a_host_cut_off_from_the_controller_but_passing_in_consul_is_not_moved(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _replicated(tmp_path, "cut-a", 18104, failover={"after": "3s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = _placed(inventory, "cut-a")
    victim = next(h for h in placed if h != "lab-1")
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    controller = "$(echo $SSH_CLIENT | cut -d' ' -f1)"  # only the controller loses SSH; Consul peers do not
    _sh(inventory, f"iptables -I INPUT -p tcp --dport 22 -s {controller} -j DROP", victim)
    try:
        for _ in range(2):
            cut = _reconcile(run_cli, inventory, "-T", "2", playbook)
            assert cut.status == 4, cut.out + cut.err
            time.sleep(2)
        assert f"{victim}: cut-a: unreachable from here, but its instance passes in Consul: not moved" in cut.err
        assert _running(inventory, "cut-a", f"docker:!{victim}")[spare] == []  # never a second copy
    finally:
        undo = f"iptables -D INPUT -p tcp --dport 22 -s {_controller_address(inventory)} -j DROP"
        subprocess.run(["docker", "exec", _container(lab_inventory, victim), "sh", "-c", undo], check=True)
    assert _http_through_ssh(inventory, victim, 18104, "/version") == (200, b"v1\n")  # it served all along
    assert _reconcile(run_cli, inventory, "--detailed-exitcode", playbook).status == 0


def _controller_address(inventory: Path) -> str:
    return _sh(inventory, "echo $SSH_CLIENT | cut -d' ' -f1", "lab-1")["lab-1"].strip()


def _container(lab_inventory: tuple[Lab, Path], host: str) -> str:
    return lab_inventory[0].container(host)


def test_an_unhealthy_instance_is_replaced_in_place_then_moved_when_that_fails(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _replicated(tmp_path, "sick-a", 18105, failover={"after": "3s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = _placed(inventory, "sick-a")
    sick = placed[0]
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    container = "$(docker ps -q --filter label=pushorch.service=sick-a)"
    break_it = f"docker exec {container} /bin/busybox rm /www/health"
    ids = "docker ps -q --filter label=pushorch.service=sick-a"
    # 1. Unhealthy past failover.after: replaced in place by a fresh container, which is healthy.
    first = _sh(inventory, f"{ids}; {break_it}", sick)[sick]
    assert _reconcile(run_cli, inventory, playbook).status == 0  # starts the clock
    time.sleep(4)
    fixed = _reconcile(run_cli, inventory, playbook)
    assert fixed.status == 0 and "unhealthy for" in fixed.out, fixed.out + fixed.err
    assert _sh(inventory, ids, sick)[sick] != first and _http_through_ssh(inventory, sick, 18105, "/health")[0] == 200
    assert _reconcile(run_cli, inventory, playbook).status == 0  # seen healthy: the record forgets it
    # 2. Unhealthy again, and the host's own image is bad: the fresh container fails its gate, so it moves.
    image = _sh(inventory, f"docker inspect --format '{{{{.Config.Image}}}}' {container}", sick)[sick].strip()
    broken = f"{image.rsplit(':', 1)[0]}:broken"
    _sh(inventory, f"{break_it}; docker pull -q {broken} && docker tag {broken} {image}", sick)
    try:
        assert _reconcile(run_cli, inventory, playbook).status == 0
        time.sleep(4)
        assert _reconcile(run_cli, inventory, playbook).status == 6  # in place: the gate fails on the bad image
        moved = _reconcile(run_cli, inventory, playbook)
        assert moved.status == 0 and f"failover from {sick}" in moved.out, moved.out + moved.err
        assert _running(inventory, "sick-a") == {sick: [], spare: ["v1"], **{h: ["v1"] for h in placed if h != sick}}
    finally:
        _sh(inventory, f"docker rmi {image} >/dev/null 2>&1 || true", sick)

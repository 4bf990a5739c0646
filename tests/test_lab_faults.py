"""Fault injection on the lab: failover, locks, a killed controller, broken daemons and hosts.

Each test breaks something real (a lab host stopped, dockerd unable to start, a pull that fails,
a host that never speaks SSH, a controller killed with SIGKILL), then asserts on what the hosts run
afterwards, and that the next run converges. Each test uses its own service and port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pushorch.lab.cluster import Lab
from tests.conftest import ROOT
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_rollout import _playbook, _running, _wait_running

pytestmark = pytest.mark.lab


def _reconcile(run_cli, inventory: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("reconcile", "-i", str(inventory), "--lock-file", str(inventory.parent / "run.lock"), *args)


def _replicated(tmp_path: Path, service: str, port: int, failover: dict[str, Any] | None = None, **update: Any) -> str:
    """A service with 2 replicas over the 3 lab hosts (failover needs a spare host)."""
    path = Path(_playbook(tmp_path, service, port, **update))
    plays = json.loads(path.read_text())
    plays[0]["services"][0]["replicas"] = 2
    if failover is not None:
        plays[0]["services"][0]["failover"] = failover
    path.write_text(json.dumps(plays))
    return str(path)


def _consul_ids(inventory: Path, host: str) -> set[str]:
    return set(json.loads(_http_through_ssh(inventory, host, 8500, "/v1/agent/services")[1]))


def test_a_lost_host_moves_its_instance_and_gets_no_instance_back(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    playbook = _replicated(tmp_path, "fo-a", 18091, failover={"after": "4s"})
    assert _reconcile(run_cli, inventory, playbook).status == 0
    placed = sorted(h for h, versions in _running(inventory, "fo-a").items() if versions)
    assert len(placed) == 2
    lost, kept = placed
    spare = next(h for h in DOCKER_HOSTS if h not in placed)
    subprocess.run(["docker", "stop", "-t", "0", lab.container(lost)], check=True, capture_output=True)
    try:
        # The first run that cannot reach it only starts the clock: a blip is not a lost host.
        waiting = _reconcile(run_cli, inventory, "-T", "3", playbook)
        assert waiting.status == 4 and "its instance moves after 4s" in waiting.err
        assert _running(inventory, "fo-a", f"docker:!{lost}")[spare] == []
        time.sleep(5)
        moved = _reconcile(run_cli, inventory, "-T", "3", playbook)
        assert moved.status == 4, moved.out + moved.err  # the lost host is reported ...
        assert f"failover from {lost}" in moved.out  # ... and its instance moved
        alive = f"docker:!{lost}"
        assert _running(inventory, "fo-a", alive) == {kept: ["v1"], spare: ["v1"]}
        assert f"fo-a-{spare}" in _consul_ids(inventory, spare)
        replaces = "docker ps --filter label=pushorch.service=fo-a --format '{{.Label \"pushorch.replaces\"}}'"
        assert _sh(inventory, replaces, spare) == {spare: f"{lost}\n"}  # the label that marks lost's instance stale
    finally:
        lab.up(3, 1, lambda _: None)  # the lost host returns, its stale instance restarted by its dockerd
    assert _running(inventory, "fo-a")[lost] == ["v1"]  # stale, still running
    back = _reconcile(run_cli, inventory, playbook)
    assert back.status == 0, back.out + back.err
    assert _running(inventory, "fo-a") == {lost: [], kept: ["v1"], spare: ["v1"]}  # no failback, nothing twice
    assert f"fo-a-{lost}" not in _consul_ids(inventory, lost)
    quiet = _reconcile(run_cli, inventory, "--detailed-exitcode", playbook)
    assert (quiet.status, quiet.out, quiet.err) == (0, "", "")  # cron mails nothing


def test_a_host_that_lost_power_boots_with_an_empty_run_as_a_real_host_does(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path],
) -> None:
    """The soak (seed 1 round 24): after `docker stop -t 0` of a lab host (a power cut), runtime state
    the daemons left in /run made dockerd refuse to start a container again ("failed to start shim:
    mkdir .../moby/ID: file exists"). A real host's /run is a tmpfs: the lab's boots empty too."""
    lab, inventory = lab_inventory
    host = "lab-3"
    registry = json.loads(_sh(inventory, "cat /etc/docker/daemon.json", host)[host])["insecure-registries"][0]
    run = f"docker rm -f power-probe >/dev/null 2>&1; docker run -d --restart no --name power-probe {registry}/pushorch/demo-app:v1"
    _sh(
        inventory,
        f"{run} >/dev/null && touch /run/docker/left-by-the-last-boot /run/containerd/left-by-the-last-boot",
        host,
    )
    subprocess.run(["docker", "stop", "-t", "0", lab.container(host)], check=True, capture_output=True)
    lab.up(3, 1, lambda _: None)
    try:
        left = "ls /run/docker/left-by-the-last-boot /run/containerd/left-by-the-last-boot 2>/dev/null; true"
        assert _sh(inventory, left, host) == {host: ""}
        started = "docker start power-probe >/dev/null && docker inspect -f '{{.State.Running}}' power-probe"
        assert _sh(inventory, started, host) == {host: "true\n"}
    finally:
        _sh(inventory, "docker rm -f power-probe >/dev/null 2>&1; true", host)


def _pushorch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pushorch", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_reconciles_at_once_one_runs_the_other_exits_7(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "lk-a", 18092, min_healthy_time="3s")
    for lock_files in (("a.lock", "a.lock"), ("a.lock", "b.lock")):  # one controller; then two controllers
        service_version = "v2" if lock_files[1] == "b.lock" else "v1"
        runs = [
            _pushorch(
                "reconcile",
                "-i",
                str(inventory),
                "-e",
                f"v={service_version}",
                "--lock-file",
                str(tmp_path / f),
                playbook,
            )
            for f in lock_files
        ]
        results = [(r.wait(120), *r.communicate()) for r in runs]
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [0, 7], results
        refused = next(err for status, _, err in results if status == 7)
        assert ("local lock" if lock_files[0] == lock_files[1] else "fleet lock on") in refused
        assert _running(inventory, "lk-a") == {h: [service_version] for h in DOCKER_HOSTS}  # nothing half-done
    waited = [
        _pushorch(
            "reconcile",
            "-i",
            str(inventory),
            "-e",
            "v=v1",
            "--lock-wait",
            "120",
            "--lock-file",
            str(tmp_path / f),
            playbook,
        )
        for f in ("a.lock", "b.lock")
    ]
    assert [r.wait(240) for r in waited] == [0, 0]  # --lock-wait: the second runs after the first
    assert _running(inventory, "lk-a") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_a_killed_controller_leaves_one_version_per_host_and_its_lock_expires(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "kc-a", 18093, min_healthy_time="2s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    lock_file = str(tmp_path / "kill.lock")
    run = _pushorch("apply", "-i", str(inventory), "-e", "v=v2", "--lock-ttl", "12", "--lock-file", lock_file, playbook)
    _wait_running(inventory, "kc-a", "lab-2", "v2")
    os.kill(run.pid, signal.SIGKILL)  # mid-rollout: lab-1 done, lab-2 gating v2, lab-3 on v1
    run.wait()
    running = _running(inventory, "kc-a")
    assert all(len(versions) <= 1 for versions in running.values()), running  # never old and new together
    # The soak's finding: history was written when the run ended, so a killed run left no record of
    # lab-1's change. Each change is appended as it happens.
    lines = [
        json.loads(line)
        for line in _sh(inventory, "cat /var/lib/pushorch/history.jsonl", "lab-1")["lab-1"].splitlines()
    ]
    last = [line for line in lines if line["service"] == "kc-a"][-1]
    assert (last["action"], last["from"], last["to"], last["result"]) == ("replace", "v1", "v2", "changed"), last
    held = run_cli("apply", "-i", str(inventory), "-e", "v=v2", "--lock-file", lock_file, playbook)
    assert held.status == 7 and "fleet lock on" in held.err and "expires in" in held.err
    status = run_cli("lock", "status", "-i", str(inventory), "docker")
    assert "HELD by" in status.out
    time.sleep(13)  # the dead run's lock expires: nobody renews it
    status_code, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", "--lock-file", lock_file, playbook)
    assert status_code == 0, changes
    assert any("took over an expired fleet lock" in c["message"] for c in changes)
    assert _running(inventory, "kc-a") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert run_cli("lock", "status", "-i", str(inventory), "docker").out.strip() == "no fleet lock held"


def test_a_kept_version_started_and_killed_before_its_gate_is_gated_by_the_next_run(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """The soak, seed 1 round 9: a run that went back to a kept version (`docker start` of it) was
    killed before that container passed its gate; the next run took it for serving (it only registered
    it in Consul), never gated, and no history said it had changed. A kept container started as the new
    one is marked ungated like a fresh one, and the next run gates it."""
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "kk-a", 18097)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0  # v1 stopped, kept
    lock_file = str(tmp_path / "kill.lock")
    _playbook(tmp_path, "kk-a", 18097, min_healthy_time="30s", healthy_deadline="60s")  # the kill lands in it
    run = _pushorch("apply", "-i", str(inventory), "--lock-ttl", "10", "--lock-file", lock_file, playbook)
    _wait_running(inventory, "kk-a", "lab-1", "v1")  # the kept v1 started, on its gate
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    _playbook(tmp_path, "kk-a", 18097)
    name = _sh(inventory, "docker ps --filter label=pushorch.service=kk-a --format '{{.Names}}'", "lab-1")["lab-1"]
    marked = _sh(inventory, "ls /var/lib/pushorch/ungated", "lab-1")["lab-1"].split()
    assert name.strip() in marked, (name, marked)
    status, changes, _ = _apply(run_cli, inventory, "--lock-wait", "30", "--lock-file", lock_file, playbook)
    assert status == 0, changes
    why = "never passed its gate (an interrupted run started it): gate it again"
    gated = [c for c in changes if c["host"] == "lab-1" and (c["action"] or {}).get("reason") == why]
    assert gated and gated[-1]["status"] == "changed", changes
    assert _running(inventory, "kk-a") == {h: ["v1"] for h in DOCKER_HOSTS}
    assert name.strip() not in _sh(inventory, "ls /var/lib/pushorch/ungated", "lab-1")["lab-1"].split()
    lines = _sh(inventory, "cat /var/lib/pushorch/history.jsonl", "lab-1")["lab-1"].splitlines()
    last = [json.loads(line) for line in lines if '"kk-a"' in line][-1]
    assert (last["to"], last["result"]) == ("v1", "changed"), last


def test_a_host_whose_dockerd_cannot_start_is_named_and_the_others_converge(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "dd-a", 18094)
    stop = (
        "kill $(cat /run/docker.pid); while docker info >/dev/null 2>&1; do sleep 0.2; done; chmod -x /usr/sbin/dockerd"
    )
    _sh(inventory, stop, "lab-3")
    try:
        status, changes, summary = _apply(run_cli, inventory, playbook)
        assert status == 5, changes
        assert "StartDocker(docker)" in summary["failed"]["lab-3"]
        assert _running(inventory, "dd-a", "docker:!lab-3") == {"lab-1": ["v1"], "lab-2": ["v1"]}
    finally:
        _sh(inventory, "chmod +x /usr/sbin/dockerd", "lab-3")
    assert _apply(run_cli, inventory, playbook)[0] == 0  # dockerd started again by the plan, then the service
    assert _running(inventory, "dd-a") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_a_host_that_never_speaks_ssh_is_bounded_by_the_connect_timeout(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    extra = tmp_path / "blackhole.ini"
    extra.write_text(f"[docker]\nblackhole ansible_host=127.0.0.1 ansible_port={server.getsockname()[1]}\n")
    playbook = _playbook(tmp_path, "bh-a", 18095)
    started = time.monotonic()
    result = run_cli("apply", "-i", str(inventory), "-i", str(extra), "-T", "2", "--json", playbook)
    elapsed = time.monotonic() - started
    server.close()
    summary = json.loads(result.out.splitlines()[-1])
    assert result.status == 4 and list(summary["unreachable"]) == ["blackhole"]
    assert "no SSH answer" in summary["unreachable"]["blackhole"]
    assert _running(inventory, "bh-a") == {h: ["v1"] for h in DOCKER_HOSTS}
    print(f"apply with a silent host and -T 2: {elapsed:.1f}s")


@contextlib.contextmanager
def pulling_through(inventory: Path, host: str, service: str, on_pull: str) -> Iterator[None]:
    """On `host`, v2 of `service` must be pulled (earlier tests may have left it there), and `docker
    pull` first runs `on_pull` (a shim in front of docker; a `exit 1` in it refuses the pull)."""
    shim = f'#!/bin/sh\n[ "$1" = pull ] && {{ {on_pull}; }}\nexec /usr/bin/docker "$@"\n'
    install = f"printf '%s' {shlex.quote(shim)} > /usr/local/bin/docker && chmod +x /usr/local/bin/docker"
    ref = f"ref=$(docker ps --filter label=pushorch.service={service} --format '{{{{.Image}}}}')"
    _sh(inventory, f"{ref}; docker rmi -f ${{ref%:*}}:v2 >/dev/null 2>&1; {install}", host)
    try:
        yield
    finally:
        _sh(inventory, "rm -f /usr/local/bin/docker", host)


def test_a_failing_pull_leaves_the_old_version_serving(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "pl-a", 18096)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    with pulling_through(inventory, "lab-2", "pl-a", 'echo "pull refused (fault injection)" >&2; exit 1'):
        status, changes, summary = _apply(run_cli, inventory, "-e", "v=v2", playbook)
        assert status == 5, changes
        assert "PullImage" in summary["failed"]["lab-2"] and "pull refused" in summary["failed"]["lab-2"]
        # Images are fetched before the first batch: max_failures 0 stops the rollout before it starts.
        assert "failed before the first batch" in summary["rollouts"][0]["stopped"]
        assert _running(inventory, "pl-a") == {h: ["v1"] for h in DOCKER_HOSTS}
        assert _http_through_ssh(inventory, "lab-2", 18096, "/version") == (200, b"v1\n")
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    assert _running(inventory, "pl-a") == {h: ["v2"] for h in DOCKER_HOSTS}


def test_a_consul_reload_refused_on_the_way_back_is_done_by_the_next_run(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """The soak (seed 358149 round 21): the agent answered 500 from the moment a new instance was
    started; registering it failed, the old one came back with its definition file, but the reload
    that would load it failed too. The file looked done, so every later run left the running instance
    out of Consul."""
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "rl-a", 18170, min_healthy_time="2s")
    assert _apply(run_cli, inventory, "-l", "lab-1", playbook)[0] == 0
    assert "rl-a-lab-1" in _consul_ids(inventory, "lab-1")
    done = threading.Event()

    def break_consul_once_v2_runs() -> None:  # after the drain's reload, before the registration's
        _wait_running(inventory, "rl-a", "lab-1", "v2", 60)
        _sh(inventory, "touch /run/consul-standin.fail", "lab-1")
        done.set()

    breaker = threading.Thread(target=break_consul_once_v2_runs, daemon=True)
    breaker.start()
    try:
        status, changes, _ = _apply(run_cli, inventory, "-l", "lab-1", "-e", "v=v2", playbook)
    finally:
        breaker.join(70)
        _sh(inventory, "rm -f /run/consul-standin.fail", "lab-1")
    assert done.is_set() and status != 0, changes
    assert _running(inventory, "rl-a", "lab-1") == {"lab-1": ["v1"]}  # back on the old instance
    assert "rl-a-lab-1" not in _consul_ids(inventory, "lab-1")  # its definition is back, not loaded
    assert _apply(run_cli, inventory, "-l", "lab-1", playbook)[0] == 0  # nothing else to change
    assert "rl-a-lab-1" in _consul_ids(inventory, "lab-1")
    assert _sh(inventory, "ls /var/lib/pushorch/consul-reload-pending 2>/dev/null; true", "lab-1")["lab-1"] == ""

"""On the lab: pulling from a registry that asks for a password (never on a command line, in a
process list or in any output), and `rollback --to VERSION`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pushorch.ansible.load_inventory import load_inventory
from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_rollout import _instances, _playbook, _running

pytestmark = pytest.mark.lab

# Every docker call on the host: its argv, and the whole process list at that moment.
WITNESS = (
    '#!/bin/sh\nprintf "%s\\n" "$*" >> /tmp/docker-argv.log\nps -eo args >> /tmp/ps.log\nexec /usr/bin/docker "$@"\n'
)


def _registry_playbook(tmp_path: Path, inventory: Path, credentials: bool) -> str:
    lab_vars = load_inventory([str(inventory)]).host_vars("lab-1")
    server = lab_vars["lab_registry_auth"]
    lines = [
        "- name: private registry",
        "  hosts: docker",
        "  services:",
        "    - name: reg-a",
        f"      image: {server}/pushorch/demo-app:v1",
        "      ports: [{host: 18120, container: 8080}]",
        "      health: {http: {path: /health, port: 8080}, interval: 200ms}",
        "      update: {parallelism: 3, min_healthy_time: 1s, healthy_deadline: 8s}",
    ]
    if credentials:
        lines += [
            "      registry:",
            f"        server: {server}",
            f"        username: {lab_vars['lab_registry_user']}",
            f"        password: !secret_file {lab_vars['lab_registry_password_file']}",
        ]
    path = tmp_path / f"registry-{credentials}.yml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_private_registry_password_only_travels_on_stdin(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    password = (inventory.parent / "registry-password").read_text()
    server = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry_auth"]
    witness = f"printf '%s' {shlex.quote(WITNESS)} > /usr/local/bin/docker && chmod +x /usr/local/bin/docker"
    _sh(inventory, f"docker logout {server} >/dev/null 2>&1; rm -f /tmp/docker-argv.log /tmp/ps.log; {witness}")
    try:
        refused = _apply(run_cli, inventory, _registry_playbook(tmp_path, inventory, credentials=False))
        assert refused[0] == 5 and "no basic auth credentials" in refused[2]["failed"]["lab-1"]  # it does ask
        playbook = _registry_playbook(tmp_path, inventory, credentials=True)
        text = run_cli("apply", "-i", str(inventory), playbook)
        assert text.status == 0, text.out + text.err
        assert _running(inventory, "reg-a") == {h: ["v1"] for h in DOCKER_HOSTS}
        assert _http_through_ssh(inventory, "lab-2", 18120, "/version") == (200, b"v1\n")
        logged = _sh(inventory, "cat /tmp/docker-argv.log /tmp/ps.log")
        assert all("login --username pushorch --password-stdin" in log for log in logged.values())
        assert all(password not in log for log in logged.values())  # argv and process lists
        assert password not in text.out + text.err
        plan = run_cli("plan", "-i", str(inventory), "--json", playbook)
        assert plan.status == 0 and password not in plan.out + plan.err
    finally:
        _sh(inventory, f"rm -f /usr/local/bin/docker /tmp/docker-argv.log /tmp/ps.log; docker logout {server}")


def test_rollback_to_a_named_version(lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "rb-to", 18121)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0

    def rollback(version: str) -> int:
        done = run_cli("rollback", "-i", str(inventory), "--to", version, "--json", playbook, "rb-to")
        return done.status

    # A version no host kept: the playbook's image with that tag, pulled and gated like any rollout.
    assert rollback("broken") == 6
    assert _running(inventory, "rb-to") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert rollback("v1") == 0  # a kept container of that version, started again behind its gate
    assert _running(inventory, "rb-to") == {h: ["v1"] for h in DOCKER_HOSTS}
    assert _http_through_ssh(inventory, "lab-3", 18121, "/version") == (200, b"v1\n")
    drift = run_cli("plan", "-i", str(inventory), "-e", "v=v2", "--detailed-exitcode", "--json", playbook)
    assert drift.status == 8 and json.loads(drift.out)["rollouts"][0]["service"] == "rb-to"  # the playbook says v2


def test_a_kept_container_that_fails_its_gate_is_stopped_never_removed(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 6 (read in the code): a rollback whose kept container failed its gate removed it
    (`docker rm -f`), on the failing host and through auto-revert on every host: the way back was gone."""
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "rb-keep", 18122)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    kept = {h: [r for r in rows if r[0] == "v1"] for h, rows in _instances(inventory, "rb-keep").items()}
    assert all(len(rows) == 1 and rows[0][1] == "exited" for rows in kept.values()), kept
    # The same playbook with a gate no version passes: rolling back to v1 fails on the first host.
    plays = json.loads(Path(playbook).read_text())
    plays[0]["services"][0]["health"]["http"]["path"] = "/no-such-path"
    Path(playbook).write_text(json.dumps(plays))
    done = run_cli("rollback", "-i", str(inventory), "--to", "v1", "--json", playbook, "rb-keep")
    # v2 fails that gate too on its way back: a failed revert has its own exit (item 10), not "rolled back".
    assert done.status == 9, done.out + done.err
    after = _instances(inventory, "rb-keep")
    for host, rows in kept.items():  # every host still holds its v1 container, by the same id
        assert [r for r in after[host] if r[0] == "v1"] == [("v1", "exited", rows[0][2])], (host, after)
    assert {h: [r[0] for r in rows if r[1] == "running"] for h, rows in after.items()} == {
        h: ["v2"] for h in DOCKER_HOSTS
    }
    # restart never reverts: a restart whose gate fails is a failed step (5), not "rolled back" (6).
    restarted = run_cli("restart", "-i", str(inventory), "-e", "v=v2", "--json", playbook, "rb-keep")
    assert restarted.status == 5, restarted.out + restarted.err


def test_a_consul_gated_service_restarts_and_reverts(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 27 item 5 (read in the code): restart and the way back waited on a `consul` gate before
    registering the instance, so they could never pass (restart exit 6, every revert "revert failed")."""
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "cg-a", 18123, healthy_deadline="6s")
    plays = json.loads(Path(playbook).read_text())
    service = plays[0]["services"][0]
    service["health"] = {"consul": True, "interval": "200ms", "timeout": "2s"}
    service["consul"] = {"check": {"http": "/health", "interval": "300ms"}}
    Path(playbook).write_text(json.dumps(plays))
    assert _apply(run_cli, inventory, playbook)[0] == 0
    restarted = run_cli("restart", "-i", str(inventory), "--json", playbook, "cg-a")
    assert restarted.status == 0, restarted.out + restarted.err
    ids = {h: f"cg-a-{h}" for h in DOCKER_HOSTS}
    for host in DOCKER_HOSTS:  # registered again, and passing
        health = json.loads(_http_through_ssh(inventory, host, 8500, f"/v1/agent/health/service/id/{ids[host]}")[1])
        assert health["AggregatedStatus"] == "passing", (host, health)
    # lab-1 passes v2, lab-2 gets the broken image: lab-1 goes back to v1 behind its consul gate.
    status, changes, summary = _apply(run_cli, inventory, "-e", "v=v2", "-e", "bad_host=lab-2", playbook)
    report = summary["rollouts"][0]
    assert status == 6 and "lab-1" in report["reverted"], (changes, report)
    assert "revert failed" not in json.dumps(summary), summary
    assert _running(inventory, "cg-a") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_doctor_asks_the_registry_from_the_host_with_the_playbooks_credentials(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    """Issue 26: the lab's password registry, asked from lab-1 with the credentials, without, and
    with a wrong password."""
    _, inventory = lab_inventory

    def registry(playbook: str) -> tuple[int, dict[str, str]]:
        result = run_cli("doctor", "-i", str(inventory), "-l", "lab-1", "--json", playbook)
        return result.status, json.loads(result.out)["hosts"][0]["checks"]["registry"]

    status, check = registry(_registry_playbook(tmp_path, inventory, credentials=True))
    assert status == 0 and check["status"] == "ok" and "credentials of pushorch accepted" in check["detail"], check
    status, check = registry(_registry_playbook(tmp_path, inventory, credentials=False))
    assert status == 0 and check["status"] == "warn" and "asks for credentials" in check["detail"], check
    wrong = Path(_registry_playbook(tmp_path, inventory, credentials=True))
    text = wrong.read_text()
    wrong.write_text(text[: text.index("password: !secret_file")] + 'password: !secret "not-the-password"\n')
    status, check = registry(str(wrong))
    assert status == 5 and check["status"] == "fail" and "refused the credentials of pushorch" in check["detail"], check

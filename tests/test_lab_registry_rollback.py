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
from tests.test_lab_rollout import _playbook, _running

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

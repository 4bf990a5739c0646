"""Every gate kind on the lab (http is in test_lab_rollout.py): a passing and a failing rollout each.

For each kind: v1 starts behind its gate; a bad version fails its gate on the first host, the
rollout aborts (exit 6) and that host serves v1 again; v2 then rolls out to every host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh
from tests.test_lab_faults import _consul_ids
from tests.test_lab_rollout import _running

pytestmark = pytest.mark.lab

FAST = {"parallelism": 1, "min_healthy_time": "1s", "healthy_deadline": "6s"}
KINDS: dict[str, tuple[dict[str, Any], str, str, str]] = {
    # kind: (health, repository, bad tag, what the failed gate says)
    "tcp": ({"tcp": {"port": 8080}}, "pushorch/demo-app", "mute", ":8080: Connection refused;"),
    "cmd": ({"cmd": ["cat", "/www/health"]}, "pushorch/demo-app", "broken", "cmd exit 1"),
    "docker": ({"docker": True}, "pushorch/demo-app-hc", "broken", "docker health"),
    "consul": ({"consul": True}, "pushorch/demo-app", "broken", "consul critical"),
}


def _gated(tmp_path: Path, kind: str, port: int) -> str:
    health, repository, _, _ = KINDS[kind]
    service: dict[str, Any] = {
        "name": f"gate-{kind}",
        "image": f"{{{{ lab_registry }}}}/{repository}:{{{{ v }}}}",
        "ports": [{"host": port, "container": 8080}],
        "health": {**health, "interval": "200ms", "timeout": "1s"},
        "update": FAST,
        "consul": {"check": {"http": "/health", "interval": "500ms"}},
    }
    play = {"name": f"{kind} gate", "hosts": "docker", "vars": {"v": "v1"}, "services": [service]}
    path = tmp_path / f"gate-{kind}.yml"
    path.write_text(json.dumps([play]))
    return str(path)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_gate_passes_a_healthy_version_and_stops_a_bad_one(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path, kind: str
) -> None:
    _, inventory = lab_inventory
    port = 18110 + sorted(KINDS).index(kind)
    service = f"gate-{kind}"
    playbook = _gated(tmp_path, kind, port)
    status, changes, _ = _apply(run_cli, inventory, playbook)
    assert status == 0, changes
    assert _running(inventory, service) == {h: ["v1"] for h in DOCKER_HOSTS}
    _, _, bad, said = KINDS[kind]
    status, changes, summary = _apply(run_cli, inventory, "-e", f"v={bad}", playbook)
    assert status == 6, changes
    assert "gate failed" in summary["failed"]["lab-1"] and said in summary["failed"]["lab-1"]
    assert _running(inventory, service) == {h: ["v1"] for h in DOCKER_HOSTS}  # lab-1 back on v1, others untouched
    assert _http_through_ssh(inventory, "lab-1", port, "/version") == (200, b"v1\n")
    assert f"{service}-lab-1" in _consul_ids(inventory, "lab-1")
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0, changes
    assert _running(inventory, service) == {h: ["v2"] for h in DOCKER_HOSTS}

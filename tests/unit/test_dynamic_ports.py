"""A start-first service that declares no host port (Docker chooses it): its Consul definition points
at the port the container publishes, in every plan that writes it (found by the fault soak: the
check was written to ADDR:None and stayed critical)."""

from __future__ import annotations

import json
from pathlib import Path

from pushorch.actions import WriteConsul
from pushorch.load.playbooks import load_spec
from pushorch.planner import Options, plan
from pushorch.planner.restart import restart_plan
from tests.unit.test_planner_golden import _observed

PLAYBOOK = """
- hosts: web
  services:
    - name: web
      image: reg/web:1
      ports: [{container: 80}]
      health: {http: {path: /health, port: 80}}
      update: {order: start-first}
      consul: {}
"""


def _spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "inv.ini").write_text("[web]\nw1 ansible_host=10.0.0.5\n")
    (tmp_path / "p.yml").write_text(PLAYBOOK)
    return load_spec([str(tmp_path / "inv.ini")], [str(tmp_path / "p.yml")])[1]


def test_the_definition_of_a_running_instance_names_its_published_port(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    running = {"service": "web", "state": "running", "ports": {"80/tcp": "0.0.0.0:49153"}}
    observed = {"w1": _observed(spec, "w1", {"images": ["reg/web:1"], "containers": [running], "consul": "agent"})}
    writes = [a for a in plan(spec, observed, Options(playbooks=("p.yml",))).actions if isinstance(a, WriteConsul)]
    assert len(writes) == 1
    body = json.loads(writes[0].content)["service"]
    assert body["port"] == 49153 and body["check"]["http"] == "http://10.0.0.5:49153/health"


def test_new_and_restarted_instances_look_their_port_up(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    fresh = plan(spec, {"w1": _observed(spec, "w1", {"images": ["reg/web:1"]})}, Options(playbooks=("p.yml",)))
    assert fresh.rollouts[0].batches[0][0].dynamic_port == (0, 80)
    running = {"service": "web", "state": "running", "ports": {"80/tcp": "0.0.0.0:49153"}}
    observed = {"w1": _observed(spec, "w1", {"images": ["reg/web:1"], "containers": [running]})}
    restart = restart_plan(spec, observed, "web")
    assert restart.rollouts[0].batches[0][0].dynamic_port == (0, 80)

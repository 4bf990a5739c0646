"""A compose file deployed as it is (issue 25): two services across the lab's three Docker hosts, in
depends_on order, a new version rolled out start-first under the healthcheck's gate with every
instance serving, and a broken one reverted. Assertions on what the hosts run."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from pushorch.ansible.load_inventory import load_inventory
from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _sh
from tests.test_lab_rollout import Sampler, _running

pytestmark = pytest.mark.lab

COMPOSE = """\
name: cmp
x-pushorch: {hosts: docker}
services:
  cmp-api:
    image: ${REG}/pushorch/demo-app:${API_TAG:-v1}
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]
      interval: 500ms
      timeout: 2s
      retries: 2
    deploy:
      update_config: {order: start-first, parallelism: 1, monitor: 1s, failure_action: rollback}
    x-pushorch:
      consul: {}
      update: {healthy_deadline: 15s}
  cmp-front:
    image: ${REG}/pushorch/demo-app:v1
    environment: [GREETING=front]
    ports: ["18402:8080"]
    depends_on:
      cmp-api: {condition: service_healthy}
"""


def _created(inventory: Path, service: str, field: str) -> list[datetime]:
    """Docker's RFC 3339 times (nanoseconds, trailing zeros dropped: not comparable as text)."""
    fmt = "{{." + field + "}}"
    out = _sh(inventory, f"docker inspect -f '{fmt}' $(docker ps -q --filter label=pushorch.service={service})")
    times = [line for text in out.values() for line in text.split()]
    return [datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", t).replace("Z", "+00:00")) for t in times]


def test_a_compose_app_deploys_in_order_rolls_out_start_first_and_reverts_a_broken_version(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    registry = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry"]
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    (tmp_path / ".env").write_text(f"REG={registry}\n")

    status, changes, _ = _apply(run_cli, inventory, str(compose))
    assert status == 0, changes
    assert _running(inventory, "cmp-api") == {h: ["v1"] for h in DOCKER_HOSTS}
    assert _running(inventory, "cmp-front") == {h: ["v1"] for h in DOCKER_HOSTS}
    # depends_on service_healthy: every api instance started before any front instance was created
    assert max(_created(inventory, "cmp-api", "State.StartedAt")) < min(_created(inventory, "cmp-front", "Created"))
    networks = _sh(inventory, "docker inspect -f '{{json .NetworkSettings.Networks}}' "
                   "$(docker ps -q --filter label=pushorch.service=cmp-front)")  # fmt: skip
    assert all('"cmp_default"' in text and '"cmp-front"' in text for text in networks.values()), networks

    (tmp_path / ".env").write_text(f"REG={registry}\nAPI_TAG=v2\n")
    with Sampler(inventory, "cmp-api") as sampler:
        status, changes, summary = _apply(run_cli, inventory, str(compose))
    assert status == 0, changes
    assert min(sampler.healthy_counts()) == 3, sampler.healthy_counts()  # start-first: all three serve
    assert any({"v1", "v2"} <= set(s.values()) for s in sampler.samples)  # sampled while it rolled
    assert len(summary["rollouts"][0]["batches"]) == 3, summary  # batch by batch (parallelism 1)
    assert _running(inventory, "cmp-api") == {h: ["v2"] for h in DOCKER_HOSTS}

    (tmp_path / ".env").write_text(f"REG={registry}\nAPI_TAG=broken\n")
    with Sampler(inventory, "cmp-api") as sampler:
        status, changes, _ = _apply(run_cli, inventory, str(compose))
    assert status == 6, changes  # the healthcheck's gate failed: reverted
    assert min(sampler.healthy_counts()) >= 2, sampler.healthy_counts()
    assert _running(inventory, "cmp-api") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert _running(inventory, "cmp-front") == {h: ["v1"] for h in DOCKER_HOSTS}

    result = run_cli("convert", str(compose))
    assert result.status == 0 and "image: " + registry + "/pushorch/demo-app:broken" in result.out

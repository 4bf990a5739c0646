"""The seed's Kubernetes Deployment, exactly as the seed prints it, deployed on the lab with one
command (issue 25): 3 replicas healthy and registered as the seed's Consul service, then a changed
image tag rolled out under the gates with every instance serving. Assertions on what the hosts run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pushorch.ansible.load_inventory import load_inventory
from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _http_through_ssh, _sh
from tests.test_lab_rollout import Sampler, _running

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT = ROOT / "playbooks" / "kubernetes" / "nginx-deployment.yaml"
SERVICE = ROOT / "playbooks" / "kubernetes" / "nginx-service.yaml"


def test_the_seeds_deployment_deploys_with_one_command_and_a_new_tag_rolls_out_under_the_gates(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    registry = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry"]
    assert "image: nginx:1.14.2" in DEPLOYMENT.read_text()  # the seed's file, unchanged
    mapped = f"nginx:1.14.2={registry}/pushorch/nginx-seed:1.14.2"
    args = ("--hosts", "docker", "--image-map", mapped, str(DEPLOYMENT), str(SERVICE))

    status, changes, _ = _apply(run_cli, inventory, *args)
    assert status == 0, changes
    assert _running(inventory, "nginx-deployment") == {h: ["1.14.2"] for h in DOCKER_HOSTS}
    for host in DOCKER_HOSTS:
        _, body = _http_through_ssh(inventory, host, 8500, "/v1/agent/services")
        entry = json.loads(body)[f"nginx-deployment-{host}"]
        assert (entry["Service"], entry["Tags"], entry["Meta"]["pushorch_version"]) == (
            "nginx-service",
            ["web"],
            "1.14.2",
        )
        # start-first (Kubernetes' default strategy on 3 replicas): Consul carries the Docker-chosen port
        assert _http_through_ssh(inventory, host, entry["Port"], "/version") == (200, b"1.14.2\n")
    assert run_cli("plan", "-i", str(inventory), "--detailed-exitcode", *args).status == 0  # converged

    changed = tmp_path / "nginx-deployment.yaml"
    changed.write_text(DEPLOYMENT.read_text().replace("nginx:1.14.2", "nginx:1.16.1"))
    newer = f"nginx:1.16.1={registry}/pushorch/nginx-seed:1.16.1"
    with Sampler(inventory, "nginx-deployment") as sampler:
        status, changes, summary = _apply(
            run_cli, inventory, "--hosts", "docker", "--image-map", newer, str(changed), str(SERVICE)
        )
    assert status == 0, changes
    assert min(sampler.healthy_counts()) == 3, sampler.healthy_counts()  # maxUnavailable 0: all three serve
    assert any({"1.14.2", "1.16.1"} <= set(s.values()) for s in sampler.samples)  # sampled while it rolled
    assert len(summary["rollouts"][0]["batches"]) == 3, summary  # maxSurge 1: one host at a time
    assert _running(inventory, "nginx-deployment") == {h: ["1.16.1"] for h in DOCKER_HOSTS}


CONFIGURED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: kcfg-conf}
data:
  app.conf: CONTENT
---
apiVersion: v1
kind: Secret
metadata: {name: kcfg-secret}
stringData: {token: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kcfg}
spec:
  replicas: 3
  strategy: {rollingUpdate: {maxUnavailable: 1, maxSurge: 0}}
  minReadySeconds: 1
  progressDeadlineSeconds: 15
  selector: {matchLabels: {app: kcfg}}
  template:
    metadata: {labels: {app: kcfg}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: kcfg
        image: demo-app:v1
        env:
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: kcfg-secret, key: token}}
        readinessProbe:
          exec: {command: [sh, -c, "grep -q good /www/conf/app.conf && wget -q -O- http://127.0.0.1:8080/health"]}
          periodSeconds: 1
        volumeMounts:
        - {name: conf, mountPath: /www/conf}
      volumes:
      - name: conf
        configMap: {name: kcfg-conf}
---
apiVersion: v1
kind: Service
metadata: {name: kcfg}
spec:
  type: NodePort
  selector: {app: kcfg}
  ports: [{port: 8080, targetPort: 8080, nodePort: 18403}]
"""


def test_a_configmap_and_a_secret_reach_the_instances_and_a_bad_configmap_is_reverted_by_the_readiness_gate(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    registry = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry"]
    manifests = tmp_path / "kcfg.yaml"
    args = ("--hosts", "docker", "--image-map", f"demo-app:v1={registry}/pushorch/demo-app:v1", str(manifests))
    manifests.write_text(CONFIGURED.replace("CONTENT", "good"))

    status, changes, _ = _apply(run_cli, inventory, *args)
    assert status == 0, changes
    assert _running(inventory, "kcfg") == {h: ["v1"] for h in DOCKER_HOSTS}
    for host in DOCKER_HOSTS:  # the Service's nodePort, serving the ConfigMap's file from its volume
        assert _http_through_ssh(inventory, host, 18403, "/conf/app.conf") == (200, b"good")
    files = _sh(inventory, "stat -c '%a %s' /etc/pushorch/kube/kcfg/conf/app.conf")
    assert set(files.values()) == {"644 4\n"}, files
    tokens = _sh(inventory, "docker exec $(docker ps -q --filter label=pushorch.service=kcfg) sh -c 'echo \"$TOKEN\"'")
    assert set(tokens.values()) == {"s3cret\n"}, tokens  # the Secret's value, from an env file
    assert run_cli("plan", "-i", str(inventory), "--detailed-exitcode", *args).status == 0

    manifests.write_text(CONFIGURED.replace("CONTENT", "bad"))
    status, changes, _ = _apply(run_cli, inventory, *args)
    assert status == 6, changes  # the readinessProbe, the gate, failed on the first host: reverted
    assert _running(inventory, "kcfg") == {h: ["v1"] for h in DOCKER_HOSTS}
    for host in DOCKER_HOSTS:
        assert _http_through_ssh(inventory, host, 18403, "/conf/app.conf") == (200, b"good")

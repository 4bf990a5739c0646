"""The ingress on the lab: HAProxy on an edge host, installed and configured by pushorch, and a client
sending requests through it while a rollout moves the instances behind it (docs/ingress.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.test_lab_apply import _apply, _sh
from tests.test_lab_rollout import _running

pytestmark = pytest.mark.lab

HOSTNAME = "app.example.com"


@pytest.fixture(scope="module")
def edge_lab(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """3 Docker hosts and one edge host, a lab of its own (other modules' `lab up` would remove the edge)."""
    try:
        subprocess.run(["docker", "info"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("no Docker daemon: the lab tests need one (.ci/run starts dockerd)")
    lab = Lab(tmp_path_factory.mktemp("ingress") / ".lab")
    inventory = lab.up(3, 0, lambda _: None, edges=1)
    yield lab, inventory
    lab.down(lambda _: None)


def _edge_address(inventory: Path) -> str:
    text = inventory.read_text().split("\n", 1)[1]  # after its comment line
    return str(json.loads(text)["all"]["children"]["edge"]["hosts"]["edge-1"]["ansible_host"])


def _playbook(tmp_path: Path, port: int = 18400) -> str:
    path = tmp_path / "ingress.yml"
    path.write_text(f"""
- hosts: docker
  vars: {{v: v1}}
  services:
    - name: web
      image: "{{{{ lab_registry }}}}/pushorch/demo-app:{{{{ v }}}}"
      ports: ["{port}:8080"]
      health: {{http: {{path: /health, port: 8080}}, interval: 200ms, timeout: 1s}}
      update: {{parallelism: 1, min_healthy_time: 1s, healthy_deadline: 20s}}
      ingress: {{hosts: [{HOSTNAME}]}}
- hosts: edge
  ingress: {{http_port: 80}}
""")
    return str(path)


class Client:
    """Requests for `path` through the ingress, one after the other (about 50 a second for /version,
    3 for /cgi-bin/slow, which answers after 0.3 s): every other one on a kept-alive connection, the
    rest each on a new one. A failure is a connection error or a 5xx."""

    def __init__(self, address: str, path: str = "/version") -> None:
        self.address, self.path = address, path
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        kept: http.client.HTTPConnection | None = None
        sent = 0
        while not self._stop.is_set():
            sent += 1
            fresh = sent % 2 == 0
            connection = http.client.HTTPConnection(self.address, 80, timeout=5) if fresh else kept
            if connection is None:
                connection = kept = http.client.HTTPConnection(self.address, 80, timeout=5)
            try:
                connection.request("GET", self.path, headers={"Host": HOSTNAME})
                answer = connection.getresponse()
                body = answer.read().decode().strip()
                if answer.status >= 500:
                    self.failures.append(f"{answer.status} {body[:60]}")
                else:
                    self.answers[body] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{'new' if fresh else 'kept-alive'}: {exc!r}")
                if not fresh:
                    kept = None
            finally:
                if fresh:
                    connection.close()
            self._stop.wait(0.02)


def test_a_stop_first_rollout_through_the_ingress_fails_no_request(  # type: ignore[no-untyped-def]
    edge_lab: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = edge_lab
    playbook = _playbook(tmp_path)
    status, changes, _ = _apply(run_cli, inventory, playbook)
    assert status == 0, changes
    # pushorch installed HAProxy, and its configuration names the three instances.
    config = _sh(inventory, "cat /etc/haproxy/haproxy.cfg", "edge-1")["edge-1"]
    assert all(f"server lab-{i} " in config for i in (1, 2, 3)), config
    address = _edge_address(inventory)
    # Six slow clients: about two requests in flight on each instance at any moment, so every stop
    # without the drain cuts some (HAProxy retries a refused connection, never a request sent).
    with Client(address) as client, contextlib.ExitStack() as stack:
        slow = [stack.enter_context(Client(address, "/cgi-bin/slow")) for _ in range(6)]
        time.sleep(1)
        status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
        time.sleep(1)
    assert status == 0, changes
    assert _running(inventory, "web") == {f"lab-{i}": ["v2"] for i in (1, 2, 3)}
    cut = [f for s in slow for f in s.failures]
    assert client.failures == [] and cut == [], (client.failures, cut)
    assert client.answers["v1"] > 20 and client.answers["v2"] > 20, client.answers
    assert sum(s.answers["v2"] for s in slow) > 6, [s.answers for s in slow]
    # A converged run changes nothing on the edge either.
    status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0 and [c for c in changes if c.get("status") == "changed"] == [], changes

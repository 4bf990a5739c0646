"""A failed gate explains itself (issue 26): the container's state, the last probe's answer, the ports
the app listens on against the one the gate probes, and the last log lines — for the usual causes,
each made real on the lab: a wrong port, a loopback-only listener, a crash at start, an OOM kill and
a health path answering 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pushorch.lab.cluster import Lab
from tests.test_lab_apply import _apply

pytestmark = pytest.mark.lab

CGI = (
    '/bin/busybox mkdir -p /tmp/w/cgi-bin && printf \'#!/bin/sh\\necho "Status: 500 Internal Server Error"\\n'
    'echo "Content-Type: text/plain"\\necho\\necho "database unreachable"\\n\' > /tmp/w/cgi-bin/health && '
    "/bin/busybox chmod 755 /tmp/w/cgi-bin/health && exec /bin/busybox httpd -f -p 8080 -h /tmp/w"
)
CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    # case: (service keys, what the failure must say)
    "wrong-port": (
        {"health": {"http": {"path": "/health", "port": 9090}}},
        ["the app listens on 8080; the gate probes 9090"],
    ),
    "loopback": (
        {"command": ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]},
        ["listens on 8080 only on 127.0.0.1 inside the container", "make it listen on 0.0.0.0"],
    ),
    "crash": (
        {"command": ["sh", "-c", "echo cannot open /etc/app.conf >&2; exit 3"]},
        ["exited with code 3", "cannot open /etc/app.conf"],
    ),
    "oom": (
        {"command": ["sh", "-c", 's=xxxxxxxxxxxxxxxx; while :; do s="$s$s"; done'], "resources": {"memory": "8m"}},
        ["killed for memory (OOM)"],
    ),
    "docker-health": (
        {"image": "{{ lab_registry }}/pushorch/demo-app-hc:broken", "health": {"docker": True}},
        ["Docker's last health check: exit 1"],
    ),
    "http-500": (
        {"command": ["sh", "-c", CGI], "health": {"http": {"path": "/cgi-bin/health", "port": 8080}}},
        ["HTTP 500 'database unreachable'", "probe(s), healthy at best for 0.0s", "the app listens on 8080"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_gate_says_why(lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    keys, said = CASES[case]
    service: dict[str, Any] = {
        "name": f"why-{case}",
        "image": "{{ lab_registry }}/pushorch/demo-app:v1",
        "ports": [{"host": 18140 + sorted(CASES).index(case), "container": 8080}],
        "health": {"http": {"path": "/health", "port": 8080}},
        "restart": "no",
        "update": {"min_healthy_time": "1s", "healthy_deadline": "4s"},
        **keys,
    }
    service["health"] = {**service["health"], "interval": "200ms", "timeout": "1s"}
    path = tmp_path / f"why-{case}.yml"
    path.write_text(json.dumps([{"hosts": "docker", "services": [service]}]))
    status, changes, summary = _apply(run_cli, inventory, "-l", "lab-1", str(path))
    assert status in (5, 6), changes
    message = summary["failed"]["lab-1"]
    assert "gate failed" in message, message
    for words in said:
        assert words in message, message

"""`pushorch doctor` on the lab (issue 26): every check ok on healthy hosts, and a host made to fail
each check the lab can break from outside — a stopped dockerd, a host port something else holds, the
host's clock as pushorch reads it an hour ahead (a `date` shim; the kernel clock is shared and never
changed). The refused Consul token is in test_lab_consul_secure.py (its agents enforce ACLs)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from pushorch.lab.cluster import Lab
from tests.test_lab_apply import DOCKER_HOSTS

pytestmark = pytest.mark.lab

PORT = 18160
SHIM = '#!/bin/sh\nif [ "${1#+%s}" != "$1" ]; then echo $(( $(/bin/date +%s) + 3600 )); else exec /bin/date "$@"; fi\n'


def _exec(lab: Lab, host: str, script: str, detach: bool = False) -> None:
    argv = ["docker", "exec", *(["-d"] if detach else []), lab.container(host), "sh", "-c", script]
    subprocess.run(argv, capture_output=True, check=False, timeout=60)


def _playbook(tmp_path: Path) -> str:
    service = {
        "name": "doc-web",
        "image": "{{ lab_registry }}/pushorch/demo-app:v1",
        "ports": [{"host": PORT, "container": 8080}],
        "consul": {},
    }
    path = tmp_path / "doc.yml"
    path.write_text(json.dumps([{"hosts": "docker", "services": [service]}]))
    return str(path)


def _doctor(run_cli, inventory: Path, playbook: str) -> tuple[int, dict[str, dict[str, dict[str, str]]]]:  # type: ignore[no-untyped-def]
    result = run_cli("doctor", "-i", str(inventory), "--json", playbook)
    hosts = json.loads(result.out)["hosts"]
    return result.status, {h["host"]: h["checks"] for h in hosts}


def test_doctor_names_each_broken_host_and_check(lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab, inventory = lab_inventory
    playbook = _playbook(tmp_path)
    status, checks = _doctor(run_cli, inventory, playbook)
    assert status == 0, checks
    for host in DOCKER_HOSTS:
        assert {k: v["status"] for k, v in checks[host].items()} == {
            "ssh": "ok", "become": "ok", "docker": "ok", "disk": "ok", "clock": "ok",
            "consul": "ok", "registry": "ok", "ports": "ok",
        }, checks[host]  # fmt: skip
    try:
        _exec(lab, "lab-1", "pkill -x dockerd; while pgrep -x dockerd >/dev/null; do sleep 0.2; done")
        _exec(lab, "lab-2", f"exec python3 -m http.server {PORT} --bind 0.0.0.0 >/dev/null 2>&1", detach=True)
        for host in ("lab-1", "lab-3"):  # lab-1 is the lock host: lab-2 is the one an hour apart from it
            _exec(lab, host, f"cat > /usr/local/bin/date <<'EOF'\n{SHIM}EOF\nchmod 755 /usr/local/bin/date")
        time.sleep(1)
        status, checks = _doctor(run_cli, inventory, playbook)
        assert status == 5
        assert checks["lab-1"]["docker"]["status"] == "fail", checks["lab-1"]
        assert "does not answer" in checks["lab-1"]["docker"]["detail"]
        assert checks["lab-2"]["ports"] == {"status": "fail", "detail": f"{PORT} (doc-web) is held by something else"}
        clock = checks["lab-3"]["clock"]
        assert clock["status"] == "fail" and 3590 < int(clock["detail"].split("s")[0]) <= 3601, clock
        assert "lock host" not in clock["detail"]  # an hour ahead, as the lock host is
        clock = checks["lab-2"]["clock"]
        assert clock["status"] == "fail" and "against lab-1 (lock host)" in clock["detail"], clock
        assert checks["lab-2"]["docker"]["status"] == checks["lab-3"]["ports"]["status"] == "ok"
    finally:
        _exec(
            lab,
            "lab-1",
            "pgrep -x dockerd >/dev/null || { rm -f /run/docker.pid; dockerd >/var/log/dockerd.log 2>&1 & }",
        )
        _exec(lab, "lab-2", f"pkill -f 'http.server {PORT}'; true")
        for host in ("lab-1", "lab-3"):
            _exec(lab, host, "rm -f /usr/local/bin/date")
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and subprocess.run(
                ["docker", "exec", lab.container("lab-1"), "docker", "info"], capture_output=True, check=False
            ).returncode
        ):
            time.sleep(0.5)

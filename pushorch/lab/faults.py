"""Faults a test (or the soak) does to lab hosts from outside, and their healing: the Consul agent
stopped and started, a host paused. Through `docker exec`, as a host's own init would, so a healed
host is as `lab up` made it whatever SSH sessions came and went."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from pushorch.lab import image
from pushorch.lab.cluster import Lab

_STANDIN = f"{image.FILES_MOUNT}/consul_standin.py"


def _exec(lab: Lab, host: str, script: str, detach: bool = False) -> subprocess.CompletedProcess[str]:
    argv = ["docker", "exec", *(["-d"] if detach else []), lab.container(host), "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def consul_answers(lab: Lab, host: str) -> bool:
    """Whether the host's Consul agent (the stand-in) accepts connections on its HTTP or HTTPS port."""
    probe = (
        "import socket,sys\n"
        "for port in (8500, 8501):\n"
        "    try: socket.create_connection(('127.0.0.1', port), 1).close(); sys.exit(0)\n"
        "    except OSError: pass\n"
        "sys.exit(1)\n"
    )
    return (
        subprocess.run(
            ["docker", "exec", lab.container(host), "python3", "-c", probe],
            capture_output=True,
            check=False,
            timeout=30,
        ).returncode
        == 0
    )


def stop_consul(lab: Lab, hosts: list[str]) -> None:
    """The Consul agent on each host killed (the `consul` binary stays)."""
    for host in hosts:
        _exec(lab, host, "pkill -f '[c]onsul_standin.py'; true")  # [c]: not the sh -c running it
    for host in hosts:
        _wait(lambda: not consul_answers(lab, host), f"the Consul agent on {host} to stop")  # noqa: B023


def start_consul(lab: Lab, hosts: list[str]) -> None:
    """The Consul agent on each host started again when it is not running, and answering on return."""
    for host in hosts:
        if not consul_answers(lab, host):
            _exec(lab, host, f"exec python3 {_STANDIN} >>/var/log/consul-standin.log 2>&1", detach=True)
    for host in hosts:
        _wait(lambda: consul_answers(lab, host), f"the Consul agent on {host} to answer")  # noqa: B023


def _wait(done: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def paused(lab: Lab, host: str, pause: bool = True) -> None:
    """The host's container paused (TCP accepted, nothing answers) or unpaused. Docker's freeze can
    time out on a loaded machine (seen with the suite in two processes): tried three times, and a
    failure says Docker's answer."""
    verb, want = ("pause", "true") if pause else ("unpause", "false")
    container, answer = lab.container(host), ""
    for _ in range(3):
        done = subprocess.run(["docker", verb, container], capture_output=True, text=True, check=False, timeout=60)
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Paused}}", container], capture_output=True, text=True, timeout=60
        )
        if state.stdout.strip() == want:
            return
        answer = (done.stderr or done.stdout).strip()
        time.sleep(1)
    raise RuntimeError(f"docker {verb} {container}: {answer}")

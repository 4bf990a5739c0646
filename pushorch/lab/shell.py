"""Running the controller-side tools the lab drives (docker, debootstrap, ssh-keygen)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Sequence

from pushorch.errors import PushorchError


class LabError(PushorchError):
    """A lab step failed; the message names the step and why."""


def run(step: str, argv: Sequence[str], *, stdin: bytes | None = None, check: bool = True, timeout: float = 900) -> str:
    """Run a tool; on failure raise LabError naming the step and the tool's last output lines."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"{step}: {argv[0]} not found (scripts/setup installs what the lab needs)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{step}: {argv[0]} took longer than {timeout:g}s") from None
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-5:]
        raise LabError(f"{step}: {' '.join(argv[:3])} exited {done.returncode}: " + " | ".join(tail))
    return done.stdout.decode(errors="replace")


def docker(step: str, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
    return run(step, ["docker", *args], check=check, stdin=stdin)


def container_state(name: str) -> dict[str, str] | None:
    out = docker("inspect", "container", "inspect", name, check=False)
    try:
        data = json.loads(out)[0]
    except (ValueError, IndexError):
        return None
    labels = data["Config"].get("Labels") or {}
    return {
        "image": data["Config"]["Image"],
        "running": str(data["State"]["Running"]).lower(),
        "files": labels.get("pushorch.lab.files", ""),
        "dir": labels.get("pushorch.lab.dir", ""),
        "consul": labels.get("pushorch.lab.consul", "open"),
    }


def flags(flag: str, values: list[str]) -> list[str]:
    """flags("-v", [a, b]) -> ["-v", a, "-v", b]."""
    return [item for value in values for item in (flag, value)]


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

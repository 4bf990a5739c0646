"""Why a gate failed, in one round trip: the container's state (exit code, OOM, restarts, Docker's
start error), Docker's health log, the TCP ports it listens on in its own network namespace, and its
last log lines — and the sentences that explain them against what the gate probed."""

from __future__ import annotations

import contextlib
import ipaddress
import json

from pushorch.actions import Gate
from pushorch.commands.shell import Argv

LOG_LINES = 20
_STATE = "{{.State.Status}}|{{.State.ExitCode}}|{{.State.OOMKilled}}|{{.RestartCount}}|{{.State.Pid}}|{{.State.Error}}"
_HEALTH = "{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}} {{json .Output}}{{println}}{{end}}{{end}}"
_SCRIPT = f"""n=$1
state=$(docker inspect --format '{_STATE}' "$n" 2>&1 | head -n 1)
echo "$state"
echo @@health
docker inspect --format '{_HEALTH}' "$n" 2>/dev/null | grep -v '^$' | tail -n 3
echo @@listen
pid=$(echo "$state" | cut -d'|' -f5)
[ "${{pid:-0}}" -gt 0 ] 2>/dev/null && cat /proc/"$pid"/net/tcp /proc/"$pid"/net/tcp6 2>/dev/null
echo @@logs
docker logs --tail {LOG_LINES} "$n" 2>&1
exit 0
"""


def script(container: str) -> Argv:
    return ("sh", "-c", _SCRIPT, "pushorch-diagnose", container)


def explain(out: str, gate: Gate) -> list[str]:
    """Sentences for the failure message: the state, the listening ports against the gate's port,
    Docker's health log, then the last log lines (one block)."""
    head, _, rest = out.partition("@@health\n")
    health, _, rest = rest.partition("@@listen\n")
    listen, _, logs = rest.partition("@@logs\n")
    said = _state(head.strip())
    listening = listeners(listen)
    running = head.startswith("running|")
    if running and gate.kind in ("http", "tcp") and gate.port:
        said += _ports(listening, gate.port)
    for line in health.strip().splitlines()[-1:] if gate.kind == "docker" else []:
        code, _, output = line.partition(" ")
        with contextlib.suppress(ValueError):
            output = " ".join(str(json.loads(output)).split())
        said.append(f"Docker's last health check: exit {code}: {output[:160]!r}")
    tail = logs.strip().splitlines()[-LOG_LINES:]
    said.append("last log lines:\n  " + "\n  ".join(tail) if tail else "no log output")
    return said


def _state(line: str) -> list[str]:
    status, exit_code, oom, restarts, _, error = (line.split("|", 5) + [""] * 6)[:6]
    if status not in ("running", "exited", "created", "restarting", "paused", "dead", "removing"):
        return [f"container: {line or 'gone'}"]
    said = []
    if oom == "true":
        said.append("killed for memory (OOM): its memory limit is too small for it, or it leaks")
    elif status in ("exited", "dead"):
        said.append(f"container {status} with code {exit_code}")
    else:
        said.append(f"container {status}")
    if restarts not in ("", "0"):
        said.append(f"restarted {restarts} time(s) by its restart policy")
    if error.strip():
        said.append(f"Docker: {error.strip()}")
    return said


def listeners(proc_net: str) -> dict[int, set[str]]:
    """Port -> addresses listened on, from /proc/PID/net/tcp and tcp6 (state 0A is LISTEN)."""
    found: dict[int, set[str]] = {}
    for line in proc_net.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:
            continue
        address, _, port = fields[1].partition(":")
        try:
            found.setdefault(int(port, 16), set()).add(_address(address))
        except ValueError:
            continue
    return found


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _ports(listening: dict[int, set[str]], probed: int) -> list[str]:
    if not listening:
        return [f"it listens on no TCP port (the gate probes {probed})"]
    ports = ", ".join(str(p) for p in sorted(listening))
    if probed not in listening:
        return [f"the app listens on {ports}; the gate probes {probed}"]
    addresses = listening[probed]
    if all(ipaddress.ip_address(a).is_loopback for a in addresses):
        where = ", ".join(sorted(addresses))
        return [
            f"the app listens on {probed} only on {where} inside the container: nothing from outside it "
            "(the gate, Docker's published port) reaches it; make it listen on 0.0.0.0"
        ]
    return [f"the app listens on {ports}"]

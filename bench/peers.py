"""Benchmark: the same rolling update by pushorch and by the playbook an Ansible user writes with the
community.docker collection, side by side on the lab (`python -m bench.rollout --peers`).

One service (demo-app, one container per host, HTTP health, batches of one, 2 s of healthy time)
rolled v1 -> v2 -> v1 ... on N lab hosts by each tool, `--runs` times; then the broken version
rolled by each, and what serves afterwards counted. Reported per tool: wall, controller CPU (user +
sys of the tool's process tree), the health waits (pushorch: its gates' sleeps; Ansible: its `uri`
retries and `pause`, from the json callback's task times) and the time beyond them.

Needs the `ansible` package (community.docker, ansible.posix): pip install -e '.[bench]'.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.fanout import ROOT

HEALTHY = 2  # seconds an instance must stay healthy (pushorch's min_healthy_time; Ansible's pause)
PUSHORCH_PORT, ANSIBLE_PORT = 18096, 18097

ANSIBLE_PLAYBOOK = """
- name: rolling update (community.docker)
  hosts: docker
  serial: 1
  gather_facts: false
  vars:
    image: "{{{{ lab_registry }}}}/pushorch/demo-app:{{{{ v }}}}"
  tasks:
    - name: pull the image
      community.docker.docker_image_pull:
        name: "{{{{ image }}}}"
    - name: run the container (recreated when the image changed)
      community.docker.docker_container:
        name: peer-app
        image: "{{{{ image }}}}"
        published_ports: ["{port}:8080"]
        restart_policy: unless-stopped
        stop_timeout: 10
        state: started
    - name: wait until it answers /health
      ansible.builtin.uri:
        url: "http://127.0.0.1:{port}/health"
      register: health
      until: health.status == 200
      retries: 100
      delay: 1
    - name: stay healthy for {healthy} s
      ansible.builtin.pause:
        seconds: {healthy}
"""


def _pushorch_playbook(work: Path) -> Path:
    service = {
        "name": "peer-bench",
        "image": "{{ lab_registry }}/pushorch/demo-app:{{ v }}",
        "ports": [{"host": PUSHORCH_PORT, "container": 8080}],
        "health": {"http": {"path": "/health", "port": 8080}, "interval": "200ms"},
        "update": {"parallelism": 1, "min_healthy_time": f"{HEALTHY}s", "healthy_deadline": "60s"},
    }
    path = work / "pushorch-peer.yml"
    path.write_text(json.dumps([{"name": "rollout", "hosts": "docker", "vars": {"v": "v1"}, "services": [service]}]))
    return path


def _ansible_playbook(work: Path) -> Path:
    path = work / "ansible-peer.yml"
    path.write_text(ANSIBLE_PLAYBOOK.format(port=ANSIBLE_PORT, healthy=HEALTHY))
    return path


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """(the process, wall s, CPU s of its process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_pushorch(inventory: Path, playbook: Path, version: str) -> dict[str, float]:
    argv = [sys.executable, "-m", "pushorch", "apply", "--json", "-i", str(inventory), "-e", f"v={version}"]
    done, wall, cpu = _timed([*argv, str(playbook)])
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    rollout = (summary.get("rollouts") or [{}])[0]
    batches = [b["wall"] - b["waiting"] for b in rollout.get("batches", [])]
    return _result(done.returncode, wall, cpu, float(rollout.get("waiting", 0.0)), batches)


def _result(status: int, wall: float, cpu: float, waits: float, batches: list[float]) -> dict[str, float]:
    """One run of a tool; `batch` is the median batch's time beyond its own waits."""
    median = statistics.median(batches) if batches else 0.0
    return {"status": status, "wall": wall, "cpu": cpu, "waits": waits, "beyond": wall - waits, "batch": median}


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_ansible(inventory: Path, playbook: Path, version: str) -> dict[str, float]:
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", f"v={version}"]
    done, wall, cpu = _timed([*argv, str(playbook)], env)
    waits, batches = 0.0, []
    try:
        report = json.loads(done.stdout[done.stdout.index("{") :])
    except ValueError:
        report = {}
    for play in report.get("plays", []):  # with `serial`, each batch is a play of its own
        play_waits = sum(_duration(t["task"]) for t in play.get("tasks", []) if t["task"]["name"].startswith(WAITS))
        waits += play_waits
        batches.append(_duration(play["play"]) - play_waits)
    return _result(done.returncode, wall, cpu, waits, batches)


WAITS = ("wait until", "stay healthy")


def _duration(item: dict[str, Any]) -> float:
    """A json-callback play's or task's duration in seconds."""
    duration = item.get("duration", {})
    if duration.get("start") and duration.get("end"):
        return _seconds(duration["end"]) - _seconds(duration["start"])
    return 0.0


def serving(addresses: list[str], port: int, version: str) -> int:
    """How many hosts answer /health 200 and /version with `version`."""
    count = 0
    for address in addresses:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/health", timeout=2) as reply:
                healthy = reply.status == 200
            with urllib.request.urlopen(f"http://{address}:{port}/version", timeout=2) as reply:
                count += healthy and reply.read().decode().strip() == version
        except OSError:
            continue
    return count


ENGINE = r"""
img=$1; t0=$(date +%s%N)
docker run -d --name peer-engine-a -p 18095:8080 "$img" >/dev/null
t1=$(date +%s%N)
docker stop -t 10 peer-engine-a >/dev/null
t2=$(date +%s%N)
docker rm peer-engine-a >/dev/null
echo $(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 ))
"""


def engine_time(container: str, image: str, runs: int = 3) -> float:
    """The Docker engine's own `docker run -d` + `docker stop` on one lab host, in seconds (median),
    measured on the host itself: the floor a replacement cannot go under."""
    totals = []
    for _ in range(runs):
        out = subprocess.run(
            ["docker", "exec", container, "sh", "-c", ENGINE, "engine", image], capture_output=True, text=True
        ).stdout.split()
        if len(out) == 2:
            totals.append((int(out[0]) + int(out[1])) / 1000)
    return statistics.median(totals) if totals else 0.0


def compare(inventory: Path, addresses: list[str], work: Path, runs: int, engine: float = 0.0) -> str:
    tools = {
        "pushorch": (run_pushorch, _pushorch_playbook(work), PUSHORCH_PORT),
        "ansible + community.docker": (run_ansible, _ansible_playbook(work), ANSIBLE_PORT),
    }
    rows, broken_rows = [], []
    for name, (run, playbook, port) in tools.items():
        first = run(inventory, playbook, "v1")
        if first["status"] != 0:
            raise SystemExit(f"{name}: the first deploy failed ({first})")
        results = []
        for index in range(runs):
            result = run(inventory, playbook, "v2" if index % 2 == 0 else "v1")
            if result["status"] != 0:
                raise SystemExit(f"{name}: rollout {index + 1} failed ({result})")
            results.append(result)
        median = {k: statistics.median(r[k] for r in results) for k in ("wall", "cpu", "waits", "beyond", "batch")}
        rows.append((name, median))
        last = "v2" if (runs - 1) % 2 == 0 else "v1"
        broken = run(inventory, playbook, "broken")
        broken_rows.append((name, broken, serving(addresses, port, last)))
        run(inventory, playbook, last)  # back to a good version for the next tool or run
    hosts = len(addresses)
    p, a = rows[0][1], rows[1][1]
    lines = [
        f"The same rolling update (demo-app v1 <-> v2, one container per host, batches of one, {HEALTHY} s healthy"
        f" time, HTTP health) on {hosts} lab hosts, {runs} rollouts per tool (medians).",
        "",
        "| tool | wall | controller CPU | health waits | beyond the waits | a batch beyond its waits"
        " | outside the batches |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {m['wall']:.2f} s | {m['cpu']:.2f} s | {m['waits']:.2f} s | {m['beyond']:.2f} s"
            f" | {m['batch']:.2f} s | {m['beyond'] - hosts * m['batch']:.2f} s |"
            for name, m in rows
        ),
        "",
        f"pushorch / ansible: wall {p['wall'] / a['wall']:.2f}x, CPU {p['cpu'] / a['cpu']:.2f}x,"
        f" beyond the waits {p['beyond'] / a['beyond']:.2f}x, a batch beyond its waits {p['batch'] / a['batch']:.2f}x.",
        *(
            [
                "",
                f"The engine's own `docker run -d` + `docker stop` on a lab host: {engine:.2f} s (median of 3,"
                f" timed on the host); pushorch's batch beyond its waits is {p['batch'] - engine:+.2f} s over that"
                f" (Ansible's {a['batch'] - engine:+.2f} s).",
            ]
            if engine
            else []
        ),
        "",
        "The broken version (its /health never answers 200), rolled by each:",
        "",
        "| tool | exit | wall | hosts serving the previous version afterwards |",
        "|---|---|---|---|",
        *(f"| {name} | {r['status']} | {r['wall']:.2f} s | {count} of {hosts} |" for name, r, count in broken_rows),
    ]
    return "\n".join(lines)

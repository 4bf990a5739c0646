"""Benchmark: bare hosts (no Docker, no Python) to a service serving, by pushorch and by Ansible.

Each run recreates the bench lab's bare hosts from their image, then one tool takes them to the
demo-app service answering /health: pushorch with a `docker: {}` task and the service (one apply),
Ansible with the playbook its users write for it (`raw` to get Python, `apt` for docker.io and
python3-requests, dockerd started, then community.docker's pull and container, `uri` until healthy).
Both install from the apt mirror this machine's own apt sources name (the lab copies them in).

    .venv/bin/python -m bench.bootstrap --hosts 3 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fanout import ROOT, write_doc
from bench.peers import run_ansible, run_pushorch, serving
from pushorch.lab.cluster import Lab

PORT = 18090

# Ansible's `service` module would use Debian's init script, which fails where the open-files limit
# is fixed (as in the lab's containers): start dockerd the way pushorch does on hosts without systemd.
ANSIBLE_PLAYBOOK = """
- name: bootstrap bare hosts (apt + community.docker)
  hosts: bare
  gather_facts: false
  vars:
    image: "{{{{ lab_registry }}}}/pushorch/demo-app:v1"
  tasks:
    - name: python for ansible's modules
      ansible.builtin.raw: >-
        command -v python3 || (export DEBIAN_FRONTEND=noninteractive && apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends python3)
    - name: docker.io and what community.docker needs
      ansible.builtin.apt:
        name: [docker.io, python3-requests]
        install_recommends: false
    - name: dockerd running
      ansible.builtin.shell: >-
        docker info >/dev/null 2>&1 ||
        {{ nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
        until docker info >/dev/null 2>&1; do sleep 0.5; done; }}
    - name: pull the image
      community.docker.docker_image_pull:
        name: "{{{{ image }}}}"
    - name: run the container
      community.docker.docker_container:
        name: boot-app
        image: "{{{{ image }}}}"
        published_ports: ["{port}:8080"]
        restart_policy: unless-stopped
        state: started
    - name: wait until it answers /health
      ansible.builtin.uri:
        url: "http://127.0.0.1:{port}/health"
      register: health
      until: health.status == 200
      retries: 100
      delay: 1
"""


def _pushorch_playbook(work: Path) -> Path:
    play = {
        "name": "bootstrap",
        "hosts": "bare",
        "tasks": [{"name": "docker engine", "docker": {}}],
        "services": [
            {
                "name": "boot-app",
                "image": "{{ lab_registry }}/pushorch/demo-app:v1",
                "ports": [{"host": PORT, "container": 8080}],
                "health": {"http": {"path": "/health", "port": 8080}, "interval": "200ms"},
            }
        ],
    }
    path = work / "pushorch-bootstrap.yml"
    path.write_text(json.dumps([play]))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lab = Lab(ROOT / ".lab" / "bootstrap-bench")  # its own network and hosts, beside the dev lab
    say = lambda m: print(f"lab: {m}", file=sys.stderr)  # noqa: E731
    names = [f"bare-{i}" for i in range(1, args.hosts + 1)]
    results: dict[str, list[dict[str, float]]] = {"pushorch": [], "ansible + apt + community.docker": []}
    with tempfile.TemporaryDirectory(prefix="pushorch-bootstrap-") as tmp:
        work = Path(tmp)
        playbooks = {
            "pushorch": (run_pushorch, _pushorch_playbook(work)),
            "ansible + apt + community.docker": (run_ansible, work / "ansible-bootstrap.yml"),
        }
        (work / "ansible-bootstrap.yml").write_text(ANSIBLE_PLAYBOOK.format(port=PORT))
        for index in range(args.runs):
            for tool, (run, playbook) in playbooks.items():
                for name in names:  # bare again: the image's state, nothing installed, no Docker data
                    container = lab.container(name)
                    subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)
                    subprocess.run(["docker", "volume", "rm", f"{container}-docker"], capture_output=True, check=False)
                inventory = lab.up(0, args.hosts, say)
                result = run(inventory, playbook, "v1")
                addresses = [row["address"] for row in lab.status() if row["host"] in names]
                result["serving"] = serving(addresses, PORT, "v1")
                print(f"run {index + 1} {tool}: {result}", file=sys.stderr, flush=True)
                if result["status"] != 0:
                    raise SystemExit(f"{tool}: the bootstrap failed ({result})")
                results[tool].append(result)
    lab.down(say)
    rows = []
    for tool, runs in results.items():
        wall, cpu, waits = (statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "waits"))
        rows.append((tool, wall, cpu, waits, min(int(r["serving"]) for r in runs)))
    p, a = rows[0], rows[1]
    text = "\n".join(
        [
            f"Bare lab hosts (Debian, no Docker, no Python) to demo-app answering /health on all {args.hosts},"
            f" {args.runs} runs per tool, each from freshly created bare hosts (medians); {time.strftime('%Y-%m-%d')}.",
            "",
            "| tool | wall | controller CPU | health waits | beyond the waits | hosts serving afterwards |",
            "|---|---|---|---|---|---|",
            *(
                f"| {t} | {w:.2f} s | {c:.2f} s | {g:.2f} s | {w - g:.2f} s | {s} of {args.hosts} |"
                for t, w, c, g, s in rows
            ),
            "",
            f"pushorch / ansible: wall {p[1] / a[1]:.2f}x, CPU {p[2] / a[2]:.2f}x,"
            f" beyond the waits {(p[1] - p[3]) / (a[1] - a[3]):.2f}x. pushorch's gate holds each new"
            " instance healthy for the default min_healthy_time (5 s); the Ansible playbook waits only"
            " for the first 200.",
            "",
            f"`python -m bench.bootstrap --hosts {args.hosts} --runs {args.runs}`",
        ]
    )
    print(text)
    if not args.no_write:
        write_doc(text, "bootstrap")


if __name__ == "__main__":
    main()

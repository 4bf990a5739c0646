"""Benchmark: pushorch's own time in a rolling update on the lab, beyond the health waits.

Brings up the lab (3 hosts), deploys a demo-app service, then rolls it v1 -> v2 -> v1 ... `--runs`
times for each order (stop-first, start-first), parallelism 1, min_healthy_time 1 s. Each rollout's
summary gives its wall time and the time spent asleep between health probes and in delays
(`waiting`); the rest (`own`) is pushorch's work (drain, stop, start, every probe round trip and
inspect, register, batch hand-over) plus Docker's on the hosts. Writes the table into
docs/performance.md between the `rollout` markers.

    .venv/bin/python -m bench.rollout --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.fanout import ROOT, write_doc
from pushorch.ansible.load_inventory import load_inventory
from pushorch.lab.cluster import Lab, default_dir


def _playbook(work: Path, order: str) -> Path:
    play = {
        "name": "rollout bench",
        "hosts": "docker",
        "vars": {"v": "v1"},
        "services": [
            {
                "name": f"bench-{order}",
                "image": "{{ lab_registry }}/pushorch/demo-app:{{ v }}",
                "ports": [{"host": 18099 if order == "stop-first" else 18098, "container": 8080}],
                "health": {"http": {"path": "/health", "port": 8080}, "interval": "200ms"},
                "update": {"parallelism": 1, "min_healthy_time": "1s", "order": order},
                "consul": {},
            }
        ],
    }
    path = work / f"{order}.yml"
    path.write_text(json.dumps([play]))
    return path


def _apply(inventory: Path, playbook: Path, version: str) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pushorch",
            "apply",
            "--json",
            "-i",
            str(inventory),
            "-e",
            f"v={version}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary["rollouts"][0] if summary["rollouts"] else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--peers", action="store_true", help="pushorch vs Ansible's community.docker, side by side")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lab = Lab(default_dir())
    inventory = lab.up(args.hosts, 0, lambda m: print(f"lab: {m}", file=sys.stderr))
    if args.peers:
        from bench.peers import compare, engine_time

        addresses = [row["address"] for row in lab.status() if row["host"].startswith("lab-")]
        registry = load_inventory([str(inventory)]).host_vars("lab-1")["lab_registry"]
        engine = engine_time(lab.container("lab-1"), f"{registry}/pushorch/demo-app:v1")
        with tempfile.TemporaryDirectory(prefix="pushorch-peers-") as tmp:
            text = (
                compare(inventory, sorted(addresses), Path(tmp), args.runs, engine)
                + "\n\n`python -m bench.rollout --peers"
            )
            text += f" --hosts {args.hosts} --runs {args.runs}`"
        print(text)
        if not args.no_write:
            write_doc(text, f"peers-{args.hosts}")
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="pushorch-bench-") as tmp:
        for order in ("stop-first", "start-first"):
            playbook = _playbook(Path(tmp), order)
            _apply(inventory, playbook, "v1")
            walls, waits = [], []
            for run in range(args.runs):
                report = _apply(inventory, playbook, "v2" if run % 2 == 0 else "v1")
                walls.append(report["wall"])
                waits.append(report["waiting"])
            overheads = [w - g for w, g in zip(walls, waits, strict=True)]
            rows.append(
                f"| {order} | 3 | {statistics.median(walls):.2f} s | {statistics.median(waits):.2f} s"
                f" | {statistics.median(overheads):.2f} s | {max(overheads):.2f} s |"
            )
    table = "\n".join(
        [
            f"Rolling update of one service over 3 lab hosts, parallelism 1, min_healthy_time 1 s, {args.runs} runs"
            " per order (median; max of the overhead). `python -m bench.rollout`.",
            "",
            "| order | hosts | wall | waiting (sleeps between probes) | pushorch's own (probes included) | worst own |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if not args.no_write:
        write_doc(table, "rollout")


if __name__ == "__main__":
    main()

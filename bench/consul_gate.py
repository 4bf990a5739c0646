"""Benchmark: what a Consul-gated rollout costs the controller and the hosts' SSH connections.

Rolls a stop-first service with a `consul` gate (polled every 200 ms) and a Consul check over the lab
(3 hosts), `--runs` times, each apply in a process of its own, and reports per rollout: wall time,
controller CPU (user+sys), and what went over the SSH connections: TCP channels opened from the hosts'
side (each a round trip, plus a TLS handshake on an HTTPS agent) and commands run. Counted by wrapping
the transport's methods in the measured process (`bench.consul_gate count ...`), not in pushorch.

    .venv/bin/python -m bench.consul_gate --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fanout import ROOT, write_doc


def _count_and_run(argv: list[str], out: str) -> None:
    """In the measured process: count transport calls, run `pushorch ARGV`, write the counts."""
    import atexit

    from pushorch.cli.main import main
    from pushorch.transport.asyncssh import AsyncsshTransport

    counts = {"open_tcp": 0, "run": 0, "stream": 0, "put": 0}

    def counted(name: str) -> None:
        original = getattr(AsyncsshTransport, name)

        async def wrapper(self: object, *args: object, **kwargs: object) -> object:
            counts[name] += 1
            return await original(self, *args, **kwargs)

        setattr(AsyncsshTransport, name, wrapper)

    for name in counts:
        counted(name)
    atexit.register(lambda: Path(out).write_text(json.dumps(counts)))
    main(argv)


def _playbook(work: Path) -> Path:
    play = {
        "name": "consul gate bench",
        "hosts": "docker",
        "vars": {"v": "v1"},
        "services": [
            {
                "name": "bench-consul",
                "image": "{{ lab_registry }}/pushorch/demo-app:{{ v }}",
                "ports": [{"host": 18097, "container": 8080}],
                "health": {"consul": True, "interval": "200ms", "timeout": "2s"},
                "consul": {"check": {"http": "/health", "interval": "300ms"}},
                "update": {"parallelism": 1, "min_healthy_time": "1s", "order": "stop-first"},
            }
        ],
    }
    path = work / "consul-gate.yml"
    path.write_text(json.dumps([play]))
    return path


def _apply(inventory: Path, playbook: Path, version: str, work: Path) -> dict[str, float]:
    counts = work / "counts.json"
    argv = [sys.executable, "-m", "bench.consul_gate", "count", str(counts), "apply", "--json"]
    argv += ["-i", str(inventory), "-e", f"v={version}", str(playbook)]
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"wall": wall, "cpu": cpu, **json.loads(counts.read_text())}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "count":
        _count_and_run(sys.argv[3:], sys.argv[2])
        return
    from pushorch.lab.cluster import Lab, default_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--label", default="", help="a name for this row (e.g. the commit measured)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    inventory = Lab(default_dir()).up(3, 0, lambda m: print(f"lab: {m}", file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="pushorch-bench-") as tmp:
        work = Path(tmp)
        playbook = _playbook(work)
        _apply(inventory, playbook, "v1", work)
        rows = [_apply(inventory, playbook, "v2" if run % 2 == 0 else "v1", work) for run in range(args.runs)]
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    row = (
        f"| {args.label or 'this tree'} | {median['wall']:.2f} s | {median['cpu']:.2f} s | {median['open_tcp']:.0f}"
        f" | {median['run']:.0f} |"
    )
    print(row)
    if not args.no_write:
        write_doc(row, "consul-gate")


if __name__ == "__main__":
    main()

"""Benchmark: a no-change run of a template + file playbook on N loopback hosts.

pushorch `apply`, ansible-core `ansible-playbook` (file + template, pipelining on) and pyinfra
(`files.directory` + `files.template`) each converge once, then their **second** run is timed, beside
the asyncssh floor for the same job (connect, read the file, close). Writes the table into
docs/performance.md between the `apply` markers.

    .venv/bin/python -m bench.apply --hosts 100,250 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.fanout import (
    BIN,
    ROOT,
    Sample,
    TimedOut,
    host_records,
    measure,
    pushorch_forks,
    pyinfra_inventory,
    write_doc,
)
from tests.harness.sshd import Sshd

TEMPLATE = "# rendered for {{ inventory_hostname }}\nlisten = 8080\nworkers = 4\n"
PYINFRA_TEMPLATE = "# rendered for {{ host.name }}\nlisten = 8080\nworkers = 4\n"


def write_inputs(server: Sshd, work: Path) -> dict[str, list[str]]:
    inv = server.inventory(work / "inventory.yml")
    (work / "templates").mkdir()
    (work / "templates" / "app.conf.j2").write_text(TEMPLATE)
    (work / "pushorch.yml").write_text(
        "- hosts: all\n  tasks:\n"
        "    - file: {path: /tmp/bench-pushorch, state: directory, mode: '0755'}\n"
        "    - template: {src: app.conf.j2, dest: '/tmp/bench-pushorch/{{ inventory_hostname }}.conf', mode: '0644'}\n"
    )
    (work / "ansible.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - file: {path: /tmp/bench-ansible, state: directory, mode: '0755'}\n"
        "    - template: {src: templates/app.conf.j2, dest: '/tmp/bench-ansible/{{ inventory_hostname }}.conf',"
        " mode: '0644'}\n"
    )
    (work / "pyinfra_templates").mkdir()
    (work / "pyinfra_templates" / "app.conf.j2").write_text(PYINFRA_TEMPLATE)
    (work / "deploy.py").write_text(
        "from pyinfra import host\nfrom pyinfra.operations import files\n"
        "files.directory(path='/tmp/bench-pyinfra', mode='755')\n"
        f"files.template(src='{work}/pyinfra_templates/app.conf.j2', dest=f'/tmp/bench-pyinfra/{{host.name}}.conf',"
        " mode='644')\n"
    )
    hosts = host_records(server)
    (work / "hosts.json").write_text(json.dumps(hosts))
    pyinv = pyinfra_inventory(hosts, work / "pyinfra_inventory.py")
    n = str(len(hosts))
    py = str(BIN / "python")
    return {
        "asyncssh floor (read the file)": [
            py,
            "-m",
            "bench.floors",
            "asyncssh",
            str(work / "hosts.json"),
            "cat",
            "/tmp/bench-pushorch/h001.conf",
        ],
        "pushorch apply": [
            str(BIN / "pushorch"),
            "apply",
            "-i",
            str(inv),
            "-f",
            pushorch_forks(len(hosts)),
            str(work / "pushorch.yml"),
        ],
        "pyinfra deploy": [str(BIN / "pyinfra"), "-y", "--parallel", n, str(pyinv), str(work / "deploy.py")],
        "ansible-playbook": [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", n, str(work / "ansible.yml")],
    }


def run_size(n: int, runs: int, only: tuple[str, ...] = ()) -> dict[str, Sample]:
    with tempfile.TemporaryDirectory(prefix="pushorch-bench-apply-") as tmp:
        work = Path(tmp)
        server = Sshd(work / "sshd", n).start()
        env = {
            **os.environ,
            "ANSIBLE_HOME": str(work / "ansible"),
            "ANSIBLE_PIPELINING": "1",
            "ANSIBLE_FORKS": str(n),
            "PYTHONPATH": str(ROOT),
        }
        try:
            commands = write_inputs(server, work)
            results: dict[str, Sample] = {}
            for name, argv in commands.items():
                if only and not any(o in name for o in only):
                    continue
                try:
                    if name.startswith("asyncssh"):
                        measure(commands["pushorch apply"], env, work)  # the floor reads what apply wrote
                    else:
                        measure(argv, env, work, timeout=300)  # first run converges; no-change runs are timed
                    samples = [measure(argv, env, work, timeout=300) for _ in range(runs)]
                except TimedOut as exc:
                    print(f"N={n:4d} {name:32s} {exc}", flush=True)
                    continue
                results[name] = Sample(
                    statistics.median(s.wall for s in samples),
                    statistics.median(s.cpu for s in samples),
                    max(s.rss_mib for s in samples),
                )
                r = results[name]
                print(
                    f"N={n:4d} {name:32s} wall {r.wall:6.2f}s  cpu {r.cpu:6.2f}s  rss {r.rss_mib:6.1f} MiB", flush=True
                )
            return results
        finally:
            server.stop()
            for tool in ("pushorch", "ansible", "pyinfra"):
                shutil.rmtree(f"/tmp/bench-{tool}", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="100,250")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated substrings of tool names to run")
    parser.add_argument("--forks", type=int, help="pushorch's -f (default: all hosts at once)")
    args = parser.parse_args()
    if args.forks:
        os.environ["PUSHORCH_BENCH_FORKS"] = str(args.forks)
    only = tuple(o for o in args.only.split(",") if o)
    results = {int(n): run_size(int(n), args.runs, only) for n in args.hosts.split(",")}
    lines = [
        "| N | tool (second, no-change run) | wall s | CPU s | peak MiB | wall / floor | CPU / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, rows in results.items():
        floor = rows.get("asyncssh floor (read the file)")
        for name in ("asyncssh floor (read the file)", "pushorch apply", "pyinfra deploy", "ansible-playbook"):
            r = rows.get(name)
            if r is None:
                lines.append(f"| {n} | {name} | did not finish in 300 s | | | | |")
                continue
            lines.append(
                f"| {n} | {name} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_mib:.0f} | "
                f"{r.wall / floor.wall:.2f} | {r.cpu / floor.cpu:.2f} |"
            )
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_doc(
            f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.apply --hosts {args.hosts} "
            f"--runs {args.runs}` (medians of the no-change runs).\n\n{text}",
            "apply",
        )


if __name__ == "__main__":
    sys.exit(main())

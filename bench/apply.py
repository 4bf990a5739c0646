"""Benchmark: a no-change run of a template + file playbook on N loopback hosts.

pushorch `apply`, ansible-core `ansible-playbook` (file + template, pipelining on) and pyinfra
(`files.directory` + `files.template`) each converge once, then their **second** run is timed, beside
the asyncssh floor for the same job (connect, read the file, close) and pushorch `status` of the same
playbook (the same probe, read-only). Writes the table into
docs/performance.md between the `apply` markers.

    .venv/bin/python -m bench.apply --hosts 100,250 --runs 3
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.fanout import (
    BIN,
    ROOT,
    Sample,
    TimedOut,
    host_records,
    measure,
    parse_args,
    pushorch_forks,
    pyinfra_inventory,
    summarize,
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
        # The same hosts' probe through `status` (read-only, no lock): what a cron health check pays.
        "pushorch status": [
            str(BIN / "pushorch"),
            "status",
            "-i",
            str(inv),
            "-f",
            pushorch_forks(len(hosts)),
            str(work / "pushorch.yml"),
        ],
        "pyinfra deploy": [str(BIN / "pyinfra"), "-y", "--parallel", n, str(pyinv), str(work / "deploy.py")],
        "ansible-playbook": [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", n, str(work / "ansible.yml")],
    }


def run_size(n: int, runs: int, only: Callable[[str], bool]) -> dict[str, Sample | None]:
    """Each selected tool's no-change runs; None for a tool that did not finish in 300 s."""
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
            results: dict[str, Sample | None] = {}
            for name, argv in commands.items():
                if not only(name):
                    continue
                try:
                    if name.startswith("asyncssh"):
                        measure(commands["pushorch apply"], env, work)  # the floor reads what apply wrote
                    else:
                        measure(argv, env, work, timeout=300)  # first run converges; no-change runs are timed
                    samples = [measure(argv, env, work, timeout=300) for _ in range(runs)]
                except TimedOut as exc:
                    print(f"N={n:4d} {name:32s} {exc}", flush=True)
                    results[name] = None
                    continue
                results[name] = summarize(n, name, samples)
            return results
        finally:
            server.stop()
            for tool in ("pushorch", "ansible", "pyinfra"):
                shutil.rmtree(f"/tmp/bench-{tool}", ignore_errors=True)


def main() -> None:
    args, only = parse_args("100,250")
    results = {int(n): run_size(int(n), args.runs, only) for n in args.hosts.split(",")}
    lines = [
        "| N | tool (second, no-change run) | wall s | CPU s | peak MiB | wall / floor | CPU / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, rows in results.items():
        floor = rows.get("asyncssh floor (read the file)")
        for name, r in rows.items():  # only the tools that ran
            if r is None:
                lines.append(f"| {n} | {name} | did not finish in 300 s | | | | |")
                continue
            ratios = f"{r.wall / floor.wall:.2f} | {r.cpu / floor.cpu:.2f}" if floor else "- | -"
            lines.append(f"| {n} | {name} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_mib:.0f} | {ratios} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_doc(
            f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.apply --hosts {args.hosts} "
            f"--runs {args.runs}` (medians of the no-change runs).\n\n{text}",
            "apply",
        )


if __name__ == "__main__":
    main()

"""Benchmark: `uname -a` on N loopback hosts with pushorch, ansible-core, pyinfra and the raw floors.

Not a test. Starts its own sshd (tests/harness), runs every tool against the same hosts with host keys
verified, and reports median wall time, controller CPU (user+sys of the tool and its children) and
peak memory over several runs, with ratios to the asyncssh floor. Writes the table into
docs/performance.md between the `fanout` markers.

    .venv/bin/python -m bench.fanout --hosts 20,100,250 --runs 3
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.harness.sshd import Sshd

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMMAND = ["uname", "-a"]


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mib: float


class TimedOut(RuntimeError):
    """A tool did not finish within the benchmark's time limit."""


def measure(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> Sample:
    """Run once; wall clock, CPU of the process tree (wait4) and its peak RSS."""
    # stderr to a file, not a pipe: a tool that writes more than a pipe holds would block until killed.
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                process.kill()
                os.wait4(process.pid, 0)
                raise TimedOut(f"{' '.join(argv[:3])}... did not finish within {timeout:g}s")
            time.sleep(0.005)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {process.returncode}: {stderr[-800:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def pushorch_forks(n: int) -> str:
    """pushorch's -f: every host at once (the default), or --forks F (PUSHORCH_BENCH_FORKS) to measure
    the command as users run it (default -f 200)."""
    return os.environ.get("PUSHORCH_BENCH_FORKS") or str(max(n, 1))


def tools(inv: Path, pyinv: Path, hosts_json: Path, playbook: Path, n: int) -> dict[str, list[str]]:
    py = str(BIN / "python")
    return {
        "asyncssh floor": [py, "-m", "bench.floors", "asyncssh", str(hosts_json), *COMMAND],
        "pushorch exec": [
            str(BIN / "pushorch"),
            "exec",
            "-i",
            str(inv),
            "-f",
            pushorch_forks(n),
            "all",
            "--",
            *COMMAND,
        ],
        "paramiko floor": [py, "-m", "bench.floors", "paramiko", str(hosts_json), *COMMAND],
        "pushorch exec (paramiko)": [
            str(BIN / "pushorch"),
            "exec",
            "--transport",
            "paramiko",
            "-i",
            str(inv),
            "-f",
            pushorch_forks(n),
            "all",
            "--",
            *COMMAND,
        ],
        "pyinfra exec": [str(BIN / "pyinfra"), "-y", "--parallel", str(n), str(pyinv), "exec", "--", *COMMAND],
        "ansible raw": [
            str(BIN / "ansible"),
            "all",
            "-i",
            str(inv),
            "-f",
            str(n),
            "-m",
            "raw",
            "-a",
            " ".join(COMMAND),
        ],
        "ansible command playbook": [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", str(n), str(playbook)],
    }


def host_records(server: Sshd) -> list[dict[str, object]]:
    """What the floors and pyinfra need to reach each loopback host."""
    return [
        {
            "address": a,
            "port": server.port,
            "user": "root",
            "key": str(server.client_key),
            "known_hosts": str(server.known_hosts),
        }
        for a in server.addresses
    ]


def pyinfra_inventory(hosts: list[dict[str, object]], path: Path) -> Path:
    """A pyinfra inventory of the same hosts, host keys verified against the same known_hosts."""
    path.write_text(
        "hosts = [\n"
        + "".join(
            f"    ('h{i:03d}', {{'ssh_hostname': '{h['address']}', 'ssh_port': {h['port']}, 'ssh_user': 'root', "
            f"'ssh_key': '{h['key']}', 'ssh_known_hosts_file': '{h['known_hosts']}', "
            "'ssh_strict_host_key_checking': 'yes'}),\n"
            for i, h in enumerate(hosts, start=1)
        )
        + "]\n"
    )
    return path


def summarize(n: int, name: str, samples: list[Sample]) -> Sample:
    """Median wall and CPU, peak memory of the runs; printed as it is measured."""
    r = Sample(
        statistics.median(s.wall for s in samples),
        statistics.median(s.cpu for s in samples),
        max(s.rss_mib for s in samples),
    )
    print(f"N={n:4d} {name:32s} wall {r.wall:6.2f}s  cpu {r.cpu:6.2f}s  rss {r.rss_mib:6.1f} MiB", flush=True)
    return r


def parse_args(default_hosts: str) -> tuple[argparse.Namespace, Callable[[str], bool]]:
    """The options both benchmarks take, and the tool filter --only makes."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", default=default_hosts)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help='comma-separated tool names: substrings, or "=name" exactly')
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--forks", type=int, help="pushorch's -f (default: all hosts at once)")
    args = parser.parse_args()
    if args.forks:
        os.environ["PUSHORCH_BENCH_FORKS"] = str(args.forks)
    wanted = [w for w in args.only.split(",") if w]

    def only(name: str) -> bool:
        return not wanted or any(name == w[1:] if w.startswith("=") else w in name for w in wanted)

    return args, only


def write_inputs(server: Sshd, work: Path) -> tuple[Path, Path, Path, Path]:
    inv = server.inventory(work / "inventory.yml")
    hosts = host_records(server)
    hosts_json = work / "hosts.json"
    hosts_json.write_text(json.dumps(hosts))
    pyinv = pyinfra_inventory(hosts, work / "pyinfra_inventory.py")
    playbook = work / "command.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: uname -a\n")
    return inv, pyinv, hosts_json, playbook


def run_size(n: int, runs: int, only: Callable[[str], bool]) -> dict[str, Sample]:
    with tempfile.TemporaryDirectory(prefix="pushorch-bench-") as tmp:
        work = Path(tmp)
        server = Sshd(work / "sshd", n).start()
        try:
            inv, pyinv, hosts_json, playbook = write_inputs(server, work)
            env = {
                **os.environ,
                "ANSIBLE_HOME": str(work / "ansible"),
                "ANSIBLE_PIPELINING": "1",
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_FORKS": str(n),
                "PYTHONPATH": str(ROOT),
            }
            results: dict[str, Sample] = {}
            for name, argv in tools(inv, pyinv, hosts_json, playbook, n).items():
                if not only(name):
                    continue
                results[name] = summarize(n, name, [measure(argv, env, ROOT) for _ in range(runs)])
            return results
        finally:
            server.stop()


def table(all_results: dict[int, dict[str, Sample]]) -> str:
    lines = [
        "| N | tool | wall s | CPU s | peak MiB | wall / floor | CPU / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, results in all_results.items():
        floor = results.get("asyncssh floor")
        for name, r in results.items():
            ratio = f"{r.wall / floor.wall:.2f}" if floor else "-"
            cpu_ratio = f"{r.cpu / floor.cpu:.2f}" if floor else "-"
            lines.append(f"| {n} | {name} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_mib:.0f} | {ratio} | {cpu_ratio} |")
    return "\n".join(lines)


def write_doc(text: str, marker: str) -> None:
    doc = ROOT / "docs" / "performance.md"
    content = doc.read_text() if doc.exists() else "# Performance\n"
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    block = f"{begin}\n{text}\n{end}"
    if begin in content:
        content = content[: content.index(begin)] + block + content[content.index(end) + len(end) :]
    else:
        content += f"\n{block}\n"
    doc.write_text(content)


def main() -> None:
    args, only = parse_args("20,100,250")
    results = {int(n): run_size(int(n), args.runs, only) for n in args.hosts.split(",")}
    text = table(results)
    print(text)
    if not args.no_write:
        write_doc(
            f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.fanout --hosts {args.hosts} "
            f"--runs {args.runs}` (medians; CPU = user+sys of the tool's process tree).\n\n{text}",
            "fanout",
        )


if __name__ == "__main__":
    main()

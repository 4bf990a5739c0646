"""Benchmark: failed requests through the ingress during rollouts, with pushorch's drain steps and with
the proxy's health checks alone (the same HAProxy configuration; only the runtime API calls differ).

Brings up a lab of its own (3 Docker hosts, 2 edges) and deploys four services behind the ingress:
`web` (stop-first), `start` (start-first, on ports Docker chooses), `cfg` (a config file its gate
checks) and `api`. For each mode it runs: `web`'s stop-first rollout, a bad version reverted,
`restart`, `rollback` and a rollout back; a bad config of `cfg` reverted; `start`'s rollout, bad
version, `restart` and `rollback`; and `apply --prune` of `api`. Clients on this machine send
requests for the case's service through edge-1: one after the other for /version (about 50 a second,
every other one on a kept-alive connection) and six for /cgi-bin/slow (0.3 s each, about two in
flight on each instance). Writes the table into docs/ingress.md between the `ingress` markers.

    .venv/bin/python -m bench.ingress
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from bench.fanout import ROOT
from bench.soak.world import CFG_CHECK
from pushorch.cli.main import main as pushorch
from pushorch.lab.cluster import Lab

HOSTNAME = "app.example.com"


class Client:
    """Requests for `path` through the ingress at `address`, one after the other: every other one on a
    kept-alive connection, the rest each on a new one. A failure is a connection error or a 5xx."""

    def __init__(self, address: str, path: str = "/version", hostname: str = HOSTNAME) -> None:
        self.address, self.path, self.hostname = address, path, hostname
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.failed_at: list[float] = []  # time.monotonic() of each failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        kept: http.client.HTTPConnection | None = None
        sent = 0
        while not self._stop.is_set():
            sent += 1
            fresh = sent % 2 == 0
            connection = http.client.HTTPConnection(self.address, 80, timeout=5) if fresh else kept
            if connection is None:
                connection = kept = http.client.HTTPConnection(self.address, 80, timeout=5)
            try:
                connection.request("GET", self.path, headers={"Host": self.hostname})
                answer = connection.getresponse()
                body = answer.read().decode().strip()
                if answer.status >= 500:
                    self.failures.append(f"{answer.status} {body[:60]}")
                    self.failed_at.append(time.monotonic())
                else:
                    self.answers[body] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{'new' if fresh else 'kept-alive'}: {exc!r}")
                self.failed_at.append(time.monotonic())
                if not fresh:
                    kept = None
            finally:
                if fresh:
                    connection.close()
            self._stop.wait(0.02)


def through_ingress(
    address: str, run: Callable[[], Any], hostname: str = HOSTNAME
) -> tuple[Any, list[str], Counter[str]]:
    """`run()` while the clients send requests through the ingress at `address`: what it returned,
    every failed request, and the versions that answered. Six slow clients keep about two requests
    in flight on each instance, so a stop without the drain cuts some (HAProxy retries a refused
    connection, never a request it sent)."""
    with Client(address, hostname=hostname) as fast, contextlib.ExitStack() as stack:
        slow = [stack.enter_context(Client(address, "/cgi-bin/slow", hostname)) for _ in range(6)]
        time.sleep(1)
        result = run()
        time.sleep(1)
    answers = fast.answers + sum((s.answers for s in slow), Counter())
    return result, fast.failures + [f for s in slow for f in s.failures], answers


def edge_address(inventory: Path, edge: str = "edge-1") -> str:
    text = inventory.read_text().split("\n", 1)[1]  # after its comment line
    return str(json.loads(text)["all"]["children"]["edge"]["hosts"][edge]["ansible_host"])


def playbook(directory: Path, port: int = 18400, order: str = "stop-first") -> str:
    """The bench's service `web` behind the ingress; start-first publishes a port Docker chooses."""
    path = directory / "ingress.yml"
    ports = "8080" if order == "start-first" else f"{port}:8080"
    path.write_text(f"""
- hosts: docker
  vars: {{v: v1}}
  services:
    - name: web
      image: "{{{{ lab_registry }}}}/pushorch/demo-app:{{{{ v }}}}"
      ports: ["{ports}"]
      health: {{http: {{path: /health, port: 8080}}, interval: 200ms, timeout: 1s}}
      update: {{parallelism: 1, min_healthy_time: 1s, healthy_deadline: 20s, order: {order}}}
      ingress: {{hosts: [{HOSTNAME}]}}
- hosts: edge
  ingress: {{http_port: 80}}
""")
    return str(path)


HEALTH = {"http": {"path": "/health", "port": 8080}, "interval": "200ms", "timeout": "1s"}
UPDATE = {"parallelism": 1, "min_healthy_time": "1s", "healthy_deadline": "20s"}
EDGE_PLAY = {"hosts": "edge", "ingress": {"http_port": 80}}


def _routed(name: str, tag: str, port: str, **more: object) -> dict[str, object]:
    """A demo-app service behind the ingress at NAME.HOSTNAME (`web` at HOSTNAME itself)."""
    return {
        "name": name,
        "image": f"{{{{ lab_registry }}}}/pushorch/demo-app:{tag}",
        "ports": [port],
        "health": HEALTH,
        "update": dict(UPDATE),
        "ingress": {"hosts": [HOSTNAME if name == "web" else f"{name}.{HOSTNAME}"]},
        **more,
    }


def config_play(*services: dict[str, object]) -> dict[str, object]:
    """`cfg` (its config file a `copy` task in its `restart_on`, read by its `cmd` gate; HAProxy checks
    its port) and `services` beside it, on the Docker hosts."""
    cfg = _routed(
        "cfg",
        "v1",
        "18402:8080",
        volumes=["/etc/bench-cfg:/conf:ro"],
        restart_on=["conf"],
        health={"cmd": ["sh", "-c", CFG_CHECK], "interval": "200ms", "timeout": "2s"},
    )
    return {
        "hosts": "docker",
        "vars": {"v": "v1", "sv": "v1", "conf": "good"},
        "tasks": [{"name": "conf", "copy": {"dest": "/etc/bench-cfg/app.conf", "content": "{{ conf }}\n"}}],
        "services": [*services, cfg],
    }


def all_services(directory: Path, api: bool = True) -> str:
    """The bench's four services behind the ingress (`api` left out: the playbook `--prune` is given)."""
    path = directory / "ingress-all.yml"
    services = [
        _routed("web", "{{ v }}", "18400:8080"),
        _routed("start", "{{ sv }}", "8080", update={**UPDATE, "order": "start-first"}),
        *([_routed("api", "v2", "18403:8080")] if api else []),
    ]
    path.write_text(json.dumps([config_play(*services), EDGE_PLAY], indent=1))
    return str(path)


def _cli(*args: str) -> int:
    try:
        pushorch(list(args))
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


@contextlib.contextmanager
def _health_checks_alone(on: bool) -> Iterator[None]:
    """Without pushorch's drain and ready calls: the proxy learns of each change by its own checks."""
    if not on:
        yield
        return

    async def nothing(*_: object) -> None:
        return None

    # --prune too: the pruned service's route stays until the proxy is told (its checks mark it DOWN).
    with (
        mock.patch("pushorch.execute.edges.Edges._everywhere", nothing),
        mock.patch("pushorch.planner.ingress._pruned", lambda *_: ()),
    ):
        yield


def measure(inventory: Path, work: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """mode -> case -> (failed requests, requests). Each case's clients ask its own service."""
    book = all_services(work)
    address = edge_address(inventory)
    base = ("-i", str(inventory))
    web, start, cfg, api = HOSTNAME, f"start.{HOSTNAME}", f"cfg.{HOSTNAME}", f"api.{HOSTNAME}"
    v2 = ("-e", "v=v2")  # web is on v2 from its rollout back on: later cases keep it there
    cases: list[tuple[str, str, tuple[str, ...]]] = [
        ("stop-first rollout, 3 hosts", web, ("apply", *base, *v2, book)),
        ("bad version, reverted by its gate", web, ("apply", *base, "-e", "v=broken", book)),
        ("restart", web, ("restart", *base, *v2, book, "web")),
        ("rollback", web, ("rollback", *base, *v2, book, "web")),
        ("stop-first rollout back", web, ("apply", *base, *v2, book)),
        ("bad config, reverted by its gate", cfg, ("apply", *base, *v2, "-e", "conf=bad", book)),
        ("start-first rollout, 3 hosts", start, ("apply", *base, *v2, "-e", "sv=v2", book)),
        ("start-first bad version, reverted", start, ("apply", *base, *v2, "-e", "sv=broken", book)),
        ("start-first restart", start, ("restart", *base, *v2, "-e", "sv=v2", book, "start")),
        ("start-first rollback", start, ("rollback", *base, *v2, "-e", "sv=v2", book, "start")),
        ("`--prune` of a routed service", api, ("apply", *base, *v2, "-e", "sv=v1", "--prune", book)),
    ]
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for mode in ("pushorch's drain steps", "health checks alone"):
        _cli("apply", *base, all_services(work))  # v1 everywhere, a good config, api routed
        out[mode] = {}
        with _health_checks_alone(mode != "pushorch's drain steps"):
            for name, hostname, argv in cases:
                if "--prune" in argv:  # the same playbook (its owner), no longer declaring api
                    all_services(work, api=False)
                status, failed, answers = through_ingress(address, lambda argv=argv: _cli(*argv), hostname)  # type: ignore[misc]
                out[mode][name] = (len(failed), len(failed) + sum(answers.values()))
                print(f"{mode}: {name}: exit {status}, {len(failed)} failed of {out[mode][name][1]}", flush=True)
    return out


def table(results: dict[str, dict[str, tuple[int, int]]]) -> str:
    modes = list(results)
    lines = ["| case | " + " | ".join(f"failed: {m}" for m in modes) + " |", "|---" * (len(modes) + 1) + "|"]
    for case in results[modes[0]]:
        cells = [f"**{results[m][case][0]}** of {results[m][case][1]}" for m in modes]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = ROOT / "docs" / "ingress.md"
    content = doc.read_text()
    begin, end = "<!-- ingress:begin -->", "<!-- ingress:end -->"
    content = content[: content.index(begin)] + f"{begin}\n{text}\n" + content[content.index(end) :]
    doc.write_text(content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pushorch-ingress-") as work:
        lab = Lab(Path(work) / ".lab")
        try:
            inventory = lab.up(3, 0, lambda m: print(m, flush=True), edges=2)
            text = table(measure(inventory, Path(work)))
        finally:
            lab.down(lambda _: None)
    print(text)
    if not args.no_write:
        write_doc(f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.ingress`.\n\n{text}")


if __name__ == "__main__":
    main()

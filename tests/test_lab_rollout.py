"""Rolling updates on the lab, watched by an availability sampler: assertions on what the hosts served.

The sampler has its own SSH connection per host and, every ~100 ms, asks each host's Consul agent
where the service is registered and GETs /health and /version there (through the connection). An
instance counts as available only when it is registered and answers 200: what a client would see.
Each test uses its own service name and port, so the tests do not disturb each other.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pushorch.lab.cluster import Lab
from pushorch.transport import open_transport
from tests.test_lab_apply import DOCKER_HOSTS, _apply, _hosts, _sh

pytestmark = pytest.mark.lab

Sample = dict[str, str | None]  # host -> version served, None when not available


class Sampler:
    """Samples every instance of `service` every ~100 ms until the with-block ends."""

    def __init__(self, inventory: Path, service: str, period: float = 0.1) -> None:
        self.settings = [s for s in _hosts(inventory) if s.name in DOCKER_HOSTS]
        self.service, self.period = service, period
        self.samples: list[Sample] = []
        self._starts: list[float] = []  # when each sample began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.samples and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        # The last sample must have started after the command returned: it shows the end state.
        mark = time.monotonic()
        deadline = mark + 10
        while (not self._starts or self._starts[-1] < mark) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        self._thread.join(30)

    async def _main(self) -> None:
        transports = {s.name: open_transport(s) for s in self.settings}
        await asyncio.gather(*(t.connect() for t in transports.values()))
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                versions = await asyncio.gather(*(self._one(h, t) for h, t in transports.items()))
                self.samples.append(dict(zip(transports, versions, strict=True)))
                self._starts.append(started)
                await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))
        finally:
            await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)

    async def _one(self, host: str, transport: Any) -> str | None:
        try:
            code, body = await _get(transport, 8500, "/v1/agent/services")
            entry = json.loads(body).get(f"{self.service}-{host}") if code == 200 else None
            if entry is None:
                return None  # not registered: clients would not find it
            if (await _get(transport, entry["Port"], "/health"))[0] != 200:
                return None
            code, version = await _get(transport, entry["Port"], "/version")
            return version.decode().strip() if code == 200 else None
        except (OSError, ValueError, IndexError, TimeoutError):
            return None

    def healthy_counts(self) -> list[int]:
        """Instances available in each sample. A host counts as down only when it is down in two
        samples running: the hosts of one sample are asked within a few tens of milliseconds of each
        other, so one sample can straddle a hand-over (host A registered again, host B drained just
        after) that never left fewer instances in real time. A real outage of a stop-first host lasts
        its whole gate (>= min_healthy_time, 1 s here), many samples."""
        samples = self.samples
        counts = []
        for i, sample in enumerate(samples):
            following = samples[i + 1] if i + 1 < len(samples) else sample
            counts.append(sum(v is not None or following[h] is not None for h, v in sample.items()))
        return counts


async def _get(transport: Any, port: int, path: str) -> tuple[int, bytes]:
    async with asyncio.timeout(2):
        stream = await transport.open_tcp("127.0.0.1", port)
        try:
            await stream.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            data = b""
            while chunk := await stream.read(65536):
                data += chunk
        finally:
            await stream.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _playbook(tmp_path: Path, service: str, port: int, **update: Any) -> str:
    """A one-service playbook on the demo app; `bad_host` (an extra var) gets the broken image."""
    policy = {"parallelism": 1, "min_healthy_time": "1s", "healthy_deadline": "8s", **update}
    play = {
        "name": "rollout test",
        "hosts": "docker",
        "vars": {"v": "v1", "bad_host": "none"},
        "services": [
            {
                "name": service,
                "image": "{{ lab_registry }}/pushorch/demo-app:{{ 'broken' if inventory_hostname == bad_host else v }}",
                "ports": [{"host": port, "container": 8080}],
                "health": {"http": {"path": "/health", "port": 8080}, "interval": "200ms"},
                "update": policy,
                "consul": {},
            }
        ],
    }
    path = tmp_path / f"{service}.yml"
    path.write_text(json.dumps([play]))  # JSON is YAML
    return str(path)


def _instances(inventory: Path, service: str, hosts: str = "docker") -> dict[str, list[tuple[str, ...]]]:
    """host -> [(version, state, id)] of the service's containers, running first."""
    fmt = '{{.Label "pushorch.version"}} {{.State}} {{.ID}}'
    out = _sh(inventory, f"docker ps -a --filter label=pushorch.service={service} --format '{fmt}'", hosts)
    rows = {h: [tuple(line.split()) for line in text.splitlines()] for h, text in out.items()}
    return {h: sorted(r, key=lambda r: r[1] != "running") for h, r in rows.items()}


def _running(inventory: Path, service: str, hosts: str = "docker") -> dict[str, list[str]]:
    rows = _instances(inventory, service, hosts)
    return {h: [v for v, state, _ in mine if state == "running"] for h, mine in rows.items()}


def _wait_running(inventory: Path, service: str, host: str, version: str, seconds: float = 60) -> None:
    """Until `host` runs `version` of `service` (a rollout in another process got there)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _running(inventory, service, host).get(host) != [version]:
        time.sleep(0.2)


def test_stop_first_keeps_two_of_three_available(lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-a", 18081)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    with Sampler(inventory, "roll-a") as sampler:
        status, changes, summary = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0, changes
    counts = sampler.healthy_counts()
    assert len(counts) > 20 and min(counts) >= 2, sampler.samples
    assert any({"v1", "v2"} <= set(s.values()) for s in sampler.samples)  # sampled while it rolled
    assert sampler.samples[-1] == {h: "v2" for h in DOCKER_HOSTS}
    assert _running(inventory, "roll-a") == {h: ["v2"] for h in DOCKER_HOSTS}  # never two versions running
    assert all(
        [v for v, state, _ in rows if state != "running"] == ["v1"] for rows in _instances(inventory, "roll-a").values()
    )
    report = summary["rollouts"][0]
    print(f"stop-first 3 hosts: wall {report['wall']}s, waiting {report['waiting']}s, pushorch's own {report['own']}s")
    # One timing per batch of one host, inside the rollout's own: what bench/peers.py reads.
    assert len(report["batches"]) == 3, report
    assert all(0 < b["waiting"] <= b["wall"] for b in report["batches"]), report
    assert sum(b["wall"] for b in report["batches"]) <= report["wall"] + 0.01, report


def test_start_first_keeps_all_three_and_consul_follows_the_new_port(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-b", 18082, order="start-first")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    with Sampler(inventory, "roll-b") as sampler:
        status, changes, _ = _apply(run_cli, inventory, "-e", "v=v2", playbook)
    assert status == 0, changes
    assert min(sampler.healthy_counts()) == 3, sampler.healthy_counts()
    assert sampler.samples[-1] == {h: "v2" for h in DOCKER_HOSTS}
    script = (
        "name=$(docker ps --filter label=pushorch.service=roll-b --format '{{.Names}}');"
        " docker port $name 8080/tcp | head -1 | sed 's/.*://';"
        " sed -n 's/.*\"port\": \\([0-9]*\\).*/\\1/p' /etc/consul.d/pushorch-roll-b.json"
    )
    for host, out in _sh(inventory, script).items():
        published, registered = out.split()
        assert published == registered and published != "18082", (host, out)


def test_broken_canary_goes_back_and_the_rest_is_untouched(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-c", 18083, canary=1, healthy_deadline="4s")
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    before = _instances(inventory, "roll-c")
    with Sampler(inventory, "roll-c") as sampler:
        status, changes, summary = _apply(run_cli, inventory, "-e", "v=broken", playbook)
    assert status == 6, changes
    report = summary["rollouts"][0]
    assert report["aborted"] and report["reverted"] == ["lab-1"] and report["skipped"] == ["lab-2", "lab-3"]
    assert "gate failed" in report["failed"]["lab-1"] and "HTTP 404" in report["failed"]["lab-1"]
    assert _running(inventory, "roll-c") == {h: ["v2"] for h in DOCKER_HOSTS}
    after = _instances(inventory, "roll-c")
    assert after["lab-2"] == before["lab-2"] and after["lab-3"] == before["lab-3"]
    assert min(sampler.healthy_counts()) >= 2 and sampler.samples[-1] == {h: "v2" for h in DOCKER_HOSTS}


def test_auto_revert_moves_earlier_batches_back(lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-d", 18084, healthy_deadline="4s")
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    third = _instances(inventory, "roll-d")["lab-3"]
    with Sampler(inventory, "roll-d") as sampler:
        status, changes, summary = _apply(run_cli, inventory, "-e", "v=v1", "-e", "bad_host=lab-2", playbook)
    assert status == 6, changes
    report = summary["rollouts"][0]
    assert report["failed"].keys() == {"lab-2"} and sorted(report["reverted"]) == ["lab-1", "lab-2"]
    assert _running(inventory, "roll-d") == {h: ["v2"] for h in DOCKER_HOSTS}
    assert _instances(inventory, "roll-d")["lab-3"] == third
    assert any(s["lab-1"] == "v1" for s in sampler.samples)  # lab-1 really was on v1 in between
    assert min(sampler.healthy_counts()) >= 2 and sampler.samples[-1] == {h: "v2" for h in DOCKER_HOSTS}


def test_an_instance_that_crashes_inside_min_healthy_time_fails_its_gate(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-e", 18085, min_healthy_time="5s", healthy_deadline="20s")
    assert _apply(run_cli, inventory, playbook)[0] == 0
    status, changes, summary = _apply(run_cli, inventory, "-e", "v=flaky", playbook)
    assert status == 6, changes
    message = summary["rollouts"][0]["failed"]["lab-1"]
    assert "roll-e flaky: gate failed: container exited" in message
    assert _running(inventory, "roll-e") == {h: ["v1"] for h in DOCKER_HOSTS}


def test_rollback_goes_back_gated_and_plan_shows_the_drift(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    _, inventory = lab_inventory
    playbook = _playbook(tmp_path, "roll-f", 18086)
    assert _apply(run_cli, inventory, playbook)[0] == 0
    assert _apply(run_cli, inventory, "-e", "v=v2", playbook)[0] == 0
    kept = {h: [r[2] for r in rows if r[0] == "v1"] for h, rows in _instances(inventory, "roll-f").items()}
    with Sampler(inventory, "roll-f") as sampler:
        done = run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, "roll-f")
    assert done.status == 0, done.out + done.err
    assert "gate" in done.out and "replace roll-f v2 -> v1" in done.out
    assert _running(inventory, "roll-f") == {h: ["v1"] for h in DOCKER_HOSTS}
    # The kept v1 containers were started again, not recreated.
    assert {h: [r[2] for r in rows if r[0] == "v1"] for h, rows in _instances(inventory, "roll-f").items()} == kept
    assert min(sampler.healthy_counts()) >= 2
    drift = run_cli("plan", "-i", str(inventory), "--detailed-exitcode", "-e", "v=v2", playbook)
    assert drift.status == 8 and "replace roll-f v1 -> v2" in drift.out
    nothing = run_cli("rollback", "-i", str(inventory), "-e", "v=v2", playbook, "no-such-service")
    assert nothing.status == 3 and "no service named 'no-such-service'" in nothing.err


def _stop_when_running(
    lab: Lab, inventory: Path, service: str, watch: str, version: str, victim: str
) -> threading.Thread:
    """Stop the lab host `victim` as soon as `watch` runs `version` (its batch passed or is gating)."""
    container = lab.container(victim)

    def go() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _running(inventory, service, watch).get(watch) == [version]:
                subprocess.run(["docker", "stop", "-t", "0", container], capture_output=True, check=True)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def test_a_host_lost_mid_rollout_counts_as_unreachable(  # type: ignore[no-untyped-def]
    lab_inventory: tuple[Lab, Path], run_cli, tmp_path: Path
) -> None:
    lab, inventory = lab_inventory
    # ServerAliveInterval 1: a lost host is noticed after ~3 s instead of 45 s.
    args = f"-o UserKnownHostsFile={inventory.parent / 'known_hosts'} -o ServerAliveInterval=1"
    fast = json.dumps({"ansible_ssh_common_args": args})
    try:
        assert _apply(run_cli, inventory, _playbook(tmp_path, "roll-g", 18087))[0] == 0
        # max_unreachable 1: the rollout goes on past the lost lab-2; 0: it stops there.
        for allowed, before, to in ((1, "v1", "v2"), (0, "v2", "v1")):
            playbook = _playbook(tmp_path, "roll-g", 18087, delay="3s", max_unreachable=allowed)
            watcher = _stop_when_running(lab, inventory, "roll-g", "lab-1", to, "lab-2")
            status, changes, summary = _apply(run_cli, inventory, "-e", fast, "-e", f"v={to}", playbook)
            watcher.join()
            assert status == 4, changes
            report = summary["rollouts"][0]
            assert list(report["unreachable"]) == ["lab-2"] and not report["aborted"] and not report["reverted"]
            assert report["skipped"] == ([] if allowed else ["lab-3"])
            running = _running(inventory, "roll-g", "docker:!lab-2")
            assert running == {"lab-1": [to], "lab-3": [to if allowed else before]}
            lab.up(3, 1, lambda _: None)  # lab-2 back (its containers restart with its dockerd)
            converged = run_cli("reconcile", "-i", str(inventory), "-e", f"v={to}", playbook)
            assert converged.status == 0, converged.err  # the next reconcile converges
            assert _running(inventory, "roll-g") == {h: [to] for h in DOCKER_HOSTS}
    finally:
        lab.up(3, 1, lambda _: None)

"""What must hold: sampled from outside every 100 ms while a round runs, and checked at rest after
the healing reconcile. Each check returns the violations it saw, as sentences."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import defaultdict

from bench.soak.world import REPLICAS, SERVICES, World

SAMPLED = {name: port for name, port in SERVICES.items() if port}  # start-first ports are Docker's


def _serving(address: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/health", timeout=0.4) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


class Sampler:
    """Polls every sampled service on every host every 100 ms from this machine (as a client would)
    and records each moment an invariant of serving did not hold."""

    def __init__(self, world: World, lost_hosts: set[str]) -> None:
        self.world, self.lost = world, lost_hosts
        self.violations: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        hosts = self.world.hosts
        while not self._stop.is_set():
            at = time.monotonic() - self.started
            for service, port in SAMPLED.items():
                up = [h for h, address in hosts.items() if _serving(address, port)]
                self._judge(service, up, at)
            self.samples += 1
            self._stop.wait(0.1)

    def _judge(self, service: str, up: list[str], at: float) -> None:
        wanted = REPLICAS.get(service, len(self.world.hosts))
        if wanted == 1 and len(up) > 1:
            self.violations.append(f"{at:.1f}s: {service} (replicas: 1) served from {len(up)} hosts at once: {up}")
        elif service in REPLICAS and len(set(up) - self.lost) > wanted:
            # A faulted host's instance may come back beside the one that replaced it until the
            # next run reaches that host; anywhere else, more than `replicas` is a bug.
            self.violations.append(f"{at:.1f}s: {service} (replicas: {wanted}) served from {len(up)} hosts: {up}")
        if wanted >= 2:
            # An instance on a faulted host may be down; without knowing where `replicas` instances sit,
            # every faulted host counts as holding one.
            floor = wanted - 1 - len(self.lost)
            if len(up) < floor:
                self.violations.append(f"{at:.1f}s: {service} served from {len(up)} hosts ({up}), fewer than {floor}")


def _containers(world: World, host: str) -> list[dict[str, str]]:
    fmt = '{{.Label "pushorch.service"}}|{{.Label "pushorch.version"}}|{{.State}}|{{.Names}}|{{.Label "pushorch.job"}}'
    out = world.sh(host, f"docker ps -a --format '{fmt}'").stdout
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 4]
    return [dict(zip(("service", "version", "state", "name", "job"), r, strict=True)) for r in rows]


def _consul(world: World, host: str, path: str) -> object:
    url = f"http://127.0.0.1:8500{path}"
    read = f"import urllib.request as u,sys; sys.stdout.write(u.urlopen('{url}', timeout=5).read().decode())"
    script = f'python3 -c "{read}"'
    done = world.sh(host, script)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None


def at_rest(world: World) -> list[str]:
    """Every at-rest invariant, on every host."""
    found: list[str] = []
    running: dict[str, list[str]] = defaultdict(list)
    for host in world.hosts:
        rows = _containers(world, host)
        mine = defaultdict(list)
        for row in rows:
            if row["job"]:
                found.append(f"{host}: job container {row['name']} left ({row['state']})")
            elif row["service"] and row["state"] == "running":
                mine[row["service"]].append(row)
        for service, up in mine.items():
            running[service].append(host)
            if len(up) > 1:
                names = [f"{r['name']} {r['version']}" for r in up]
                found.append(f"{host}: {service} runs {len(up)} containers: {names}")
        found.extend(_consul_matches(world, host, set(mine)))
        found.extend(_leftovers(world, host))
    for service in SERVICES:
        wanted = REPLICAS.get(service, len(world.hosts))
        if len(running[service]) != wanted:
            found.append(f"{service}: {len(running[service])} running instances ({running[service]}), wanted {wanted}")
    return found


def _consul_matches(world: World, host: str, running: set[str]) -> list[str]:
    """The agent lists exactly the instances that run, each passing, none in maintenance. Checks run
    every interval: a fresh one may still be critical, so passing is waited for a few seconds."""
    found: list[str] = []
    for attempt in range(20):
        services = _consul(world, host, "/v1/agent/services")
        checks = _consul(world, host, "/v1/agent/checks")
        if not isinstance(services, dict) or not isinstance(checks, dict):
            found = [f"{host}: the Consul agent did not answer"]
        else:
            listed = {str(s.get("Service")) for s in services.values()}
            found = []
            if listed != running:
                found.append(f"{host}: Consul lists {sorted(listed)}, running {sorted(running)}")
            for check in checks.values():
                if str(check.get("CheckID", "")).startswith("_service_maintenance"):
                    found.append(f"{host}: {check.get('ServiceName')} left in maintenance ({check.get('Notes')})")
                elif check.get("Status") != "passing":
                    found.append(f"{host}: check {check.get('CheckID')} is {check.get('Status')}")
        if not found or attempt == 19:
            return found
        time.sleep(0.5)
    return found


def _leftovers(world: World, host: str) -> list[str]:
    """No process of a finished run, no lock, no temporary file, a history made of whole records."""
    script = (
        'ps -eo pid=,args= | awk \'$2 == "docker" || $2 == "sleep" || $2 ~ /^\\/usr\\/bin\\/docker$/\'; '
        "echo '--'; ls -d /var/lib/pushorch/lock 2>/dev/null; "
        "echo '--'; find /var/lib/pushorch /etc/consul.d /etc/soak-cfg /tmp -xdev "
        "\\( -name '*.new' -o -name '*.tmp' -o -name 'tmp.*' -o -name '.pushorch*' \\) 2>/dev/null; "
        "echo '--'; cat /var/lib/pushorch/history.jsonl 2>/dev/null"
    )
    out = world.sh(host, script).stdout.split("--\n")
    found = []
    if len(out) < 4:
        return [f"{host}: could not look ({out})"]
    processes, lock, temporary, history = out[0], out[1], out[2], out[3]
    found += [f"{host}: process left: {line.strip()}" for line in processes.splitlines() if line.strip()]
    if lock.strip() and host == world.lock_host:
        found.append(f"{host}: the fleet lock is still held")
    found += [f"{host}: temporary file left: {line}" for line in temporary.splitlines() if line.strip()]
    for number, line in enumerate(history.splitlines(), 1):
        try:
            json.loads(line)
        except ValueError:
            found.append(f"{host}: history line {number} is not a whole record: {line[:80]!r}")
    return found

"""What must hold: sampled from outside every 100 ms while a round runs, and checked at rest after
the healing reconcile. Each check returns the violations it saw, as sentences."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.soak.world import REPLICAS, SERVICES, World

SAMPLED = {name: port for name, port in SERVICES.items() if port}  # start-first ports are Docker's


def _serving(address: str, port: int, timeout: float = 0.4, patience: float = 2.0) -> bool:
    """An instance answers 200 on /health. One that is only slow (this machine busy: the seed 1 run of
    session 35 saw `rep served from 0 hosts` for as long as lab tests ran beside it) gets a second,
    longer chance; a refused connection or an error status is an answer at once."""
    for wait in (timeout, patience):
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/health", timeout=wait) as reply:
                return bool(reply.status == 200)
        except TimeoutError:
            continue
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, TimeoutError):
                return False
        except OSError:
            return False
    return False


class Sampler:
    """Polls every sampled service on every host every 100 ms from this machine (as a client would)
    and records each moment an invariant of serving did not hold."""

    def __init__(self, world: World, lost_hosts: set[str]) -> None:
        self.world, self.lost = world, lost_hosts
        self.violations: list[str] = []
        self.notes: list[str] = []  # not pushorch's: Docker's orphan proxies seen
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
        pairs = [(service, port, host) for service, port in SAMPLED.items() for host in hosts]
        # All at once: a paused host's second chance (2 s) must not hold up the others' samples.
        with ThreadPoolExecutor(len(pairs)) as pool:
            while not self._stop.is_set():
                at = time.monotonic() - self.started
                answers = list(pool.map(lambda p: _serving(hosts[p[2]], p[1]), pairs))
                for service, port in SAMPLED.items():
                    up = [h for (s, _, h), ok in zip(pairs, answers, strict=True) if s == service and ok]
                    self._judge(service, self._real(service, port, up), at)
                self.samples += 1
                self._stop.wait(0.1)

    def _real(self, service: str, port: int, up: list[str]) -> list[str]:
        """The hosts that answered, less those where no container of `service` publishes `port`: an
        answer there came through an orphan docker-proxy (Docker's, after its daemon died) from some
        other container. Looked at only when more hosts answer than instances should exist."""
        up = [h for h in up if (h, port) not in self.world.orphans]
        if len(up) <= REPLICAS.get(service, len(self.world.hosts)):
            return up
        for host in list(up):
            if not _publishes(self.world, host, service, port):
                self.world.orphans.add((host, port))
                self.notes.append(f"{host}:{port} answered through an orphan docker-proxy (no {service} there)")
                up.remove(host)
        return up

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


def _publishes(world: World, host: str, service: str, port: int) -> bool:
    """Whether a running container of `service` on `host` publishes `port` (or the host cannot say)."""
    script = f"docker ps --filter label=pushorch.service={service} --format '{{{{.Ports}}}}'"
    done = world.sh(host, script, timeout=20)
    return done.returncode != 0 or f":{port}->" in done.stdout


FORMAT = '{{.Label "pushorch.service"}}|{{.Label "pushorch.version"}}|{{.State}}|{{.Names}}|{{.Label "pushorch.job"}}'
CONSUL = (  # both agent endpoints as one JSON object
    "python3 -c 'import json, urllib.request as u; "
    'g = lambda p: json.load(u.urlopen("http://127.0.0.1:8500/v1/agent/" + p, timeout=5)); '
    'print(json.dumps({"services": g("services"), "checks": g("checks")}))\''
)
LEFTOVERS = (
    'ps -eo pid=,args= | awk \'$2 == "docker" || $2 == "sleep" || $2 ~ /^\\/usr\\/bin\\/docker$/\'; '
    "echo '--'; ls -d /var/lib/pushorch/lock 2>/dev/null; "
    "echo '--'; find /var/lib/pushorch /etc/consul.d /etc/soak-cfg /tmp -xdev "
    "\\( -name '*.new' -o -name '*.tmp' -o -name 'tmp.*' -o -name '.pushorch*' \\) 2>/dev/null; "
    "echo '--'; cat /var/lib/pushorch/history.jsonl 2>/dev/null"
)
PART = "@@soak-part@@"


def at_rest(world: World) -> list[str]:
    """Every at-rest invariant, on every host (one `docker exec` each, the hosts at once)."""
    with ThreadPoolExecutor(len(world.hosts)) as pool:
        looks = dict(zip(world.hosts, pool.map(lambda host: _look(world, host), world.hosts), strict=True))
    found: list[str] = []
    running: dict[str, list[str]] = defaultdict(list)
    for host, (containers, consul_found, leftovers) in looks.items():
        for service in containers:
            running[service].append(host)
        found += consul_found + leftovers
    for host, (containers, _, _) in looks.items():
        found += [f"{host}: {problem}" for problem in containers.get("", [])]
    for service in SERVICES:
        wanted = REPLICAS.get(service, len(world.hosts))
        if len(running[service]) != wanted:
            found.append(f"{service}: {len(running[service])} running instances ({running[service]}), wanted {wanted}")
    return found


def still_left(world: World, found: list[str]) -> list[str]:
    """`found` less the processes gone by now: the `plan` run beside the looks has probes of its own
    (seed 254786 r110 and r291 saw its `docker ps`); a process a finished run left is still there."""
    out = []
    for line in found:
        left = re.match(r"(\S+): process left: (\d+) ", line)
        if left and world.sh(left[1], f"kill -0 {left[2]} 2>/dev/null").returncode != 0:
            continue
        out.append(line)
    return out


def _look(world: World, host: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """One host: its running services (and, under "", what is wrong with its containers), what is
    wrong with its Consul agent, and what a finished run left on it."""
    script = f"docker ps -a --format '{FORMAT}'; echo {PART}; {CONSUL}; echo; echo {PART}; {LEFTOVERS}"
    parts = world.sh(host, script).stdout.split(PART + "\n")
    if len(parts) != 3:
        return {}, [f"{host}: could not look ({parts})"], []
    services = _services(parts[0])
    consul = _consul_matches(world, host, set(services) - {""}, parts[1])
    return services, consul, _leftovers(host, parts[2], world) + _unrecorded(world, host, services, parts[2])


def _services(ps: str) -> dict[str, list[str]]:
    """`docker ps -a` rows -> running service -> its container names; "" -> the problems seen."""
    rows = [
        dict(zip(("service", "version", "state", "name", "job"), line.split("|"), strict=True))
        for line in ps.splitlines()
        if line.count("|") == 4
    ]
    mine: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["job"]:
            mine[""].append(f"job container {row['name']} left ({row['state']})")
        elif row["service"] and row["state"] == "running":
            mine[row["service"]].append(f"{row['name']} {row['version']}")
    for service, names in list(mine.items()):
        if service and len(names) > 1:
            mine[""].append(f"{service} runs {len(names)} containers: {names}")
    return mine


def _consul_matches(world: World, host: str, running: set[str], answer: str) -> list[str]:
    """The agent lists exactly the instances that run, each passing, none in maintenance. Checks run
    every interval: a fresh one may still be critical, so passing is waited for a few seconds."""
    found: list[str] = []
    for attempt in range(20):
        if attempt:
            time.sleep(0.5)
            done = world.sh(host, CONSUL)
            answer = done.stdout if done.returncode == 0 else ""
        try:
            agent = json.loads(answer)
        except ValueError:
            agent = None
        if not isinstance(agent, dict) or not isinstance(agent.get("checks"), dict):
            found = [f"{host}: the Consul agent did not answer"]
        else:
            listed = {str(s.get("Service")) for s in agent["services"].values()}
            found = []
            if listed != running:
                found.append(f"{host}: Consul lists {sorted(listed)}, running {sorted(running)}")
            for check in agent["checks"].values():
                if str(check.get("CheckID", "")).startswith("_service_maintenance"):
                    found.append(f"{host}: {check.get('ServiceName')} left in maintenance ({check.get('Notes')})")
                elif check.get("Status") != "passing":
                    found.append(f"{host}: check {check.get('CheckID')} is {check.get('Status')}")
        if not found:
            return found
    return found


def _leftovers(host: str, answer: str, world: World) -> list[str]:
    """No process of a finished run, no lock, no temporary file, a history made of whole records."""
    out = answer.split("--\n")
    if len(out) < 4:
        return [f"{host}: could not look ({out})"]
    processes, lock, temporary, history = out[0], out[1], out[2], out[3]
    found = [f"{host}: process left: {line.strip()}" for line in processes.splitlines() if line.strip()]
    if lock.strip() and host == world.lock_host:
        found.append(f"{host}: the fleet lock is still held")
    found += [f"{host}: temporary file left: {line}" for line in temporary.splitlines() if line.strip()]
    lines = history.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except ValueError:
            # A write a full disk cut short leaves its line unfinished until the next append drops
            # it; anywhere else a broken line is a record lost.
            if not (number == len(lines) and host in world.disk_full_at):
                found.append(f"{host}: history line {number} is not a whole record: {line[:80]!r}")
    return found


def _unrecorded(world: World, host: str, services: dict[str, list[str]], answer: str) -> list[str]:
    """The history records every change: the last version a service's history on this host says it
    went to is the version that runs there (a change made and not written, e.g. by a controller
    killed after it, shows as a mismatch). A full disk since that record excuses it: nothing can be
    written there (docs/reliability.md)."""
    went_to: dict[str, tuple[str, float]] = {}
    for line in answer.split("--\n")[-1].splitlines():
        with contextlib.suppress(ValueError, AttributeError, KeyError):
            record = json.loads(line)
            if record.get("to") and record.get("result") == "changed":
                when = datetime.fromisoformat(record["time"]).timestamp()
                went_to[record["service"]] = (record["to"], when)
    found = []
    for service, names in services.items():
        version = names[0].rsplit(" ", 1)[-1] if service and len(names) == 1 else ""
        said, when = went_to.get(service, ("(no record)", 0.0))
        if version and said != version and world.disk_full_at.get(host, 0.0) < when:
            found.append(f"{host}: {service} runs {version}, its history's last change is to {said}")
    return found

"""The soak's world: its own lab, the playbook it drives (one of each kind of service pushorch runs),
the controller as a user runs it (`python -m pushorch` in a subprocess), and commands on lab hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pushorch.lab.cluster import Lab

# Services, their host port (None: start-first, a Docker-chosen port) and how many instances run.
SERVICES = {"sf": 18301, "sfirst": None, "rep": 18303, "cfg": 18304, "single": 18305}
REPLICAS = {"rep": 2, "single": 1}
APP = "{{ lab_registry }}/pushorch/demo-app:{{ 'broken' if inventory_hostname == bad_host else v }}"
HEALTH = {"http": {"path": "/health", "port": 8080}, "interval": "200ms", "timeout": "1s"}
# The config service is healthy only with a good config (the image's busybox has no grep).
CFG_CHECK = 'case "$(cat /conf/app.conf)" in good*) wget -q -O- http://127.0.0.1:8080/health;; *) exit 1;; esac'
UPDATE = {"parallelism": 1, "min_healthy_time": "1s", "healthy_deadline": "10s"}


def _service(name: str, **more: object) -> dict[str, object]:
    port = SERVICES[name]
    ports = [{"host": port, "container": 8080}] if port else [{"container": 8080}]
    return {"name": name, "image": APP, "ports": ports, "health": HEALTH, "update": dict(UPDATE), "consul": {}, **more}


def playbook(v: str, bad_host: str = "none", conf: str = "good") -> list[dict[str, object]]:
    """Every kind of service: stop-first drained through Consul maintenance, start-first, `replicas`
    with failover, a config file with a job and a network, a `replicas: 1` singleton."""
    failover = {"enabled": True, "after": "5s"}
    return [
        {
            "name": "soak",
            "hosts": "docker",
            "vars": {"v": v, "bad_host": bad_host, "conf": conf},
            "networks": [{"name": "soaknet"}],
            "tasks": [{"name": "conf", "copy": {"dest": "/etc/soak-cfg/app.conf", "content": "{{ conf }}\n"}}],
            "services": [
                _service("sf", update={**UPDATE, "drain": "maintenance", "drain_delay": "500ms"}),
                _service("sfirst", update={**UPDATE, "order": "start-first"}),
                _service("rep", replicas=2, failover=failover),
                _service(
                    "cfg",
                    volumes=["/etc/soak-cfg:/conf:ro"],
                    restart_on=["conf"],
                    networks=["soaknet"],
                    jobs=[{"name": "migrate", "command": ["sh", "-c", "echo migrating; sleep 1"], "timeout": "30s"}],
                    health={
                        "cmd": ["sh", "-c", CFG_CHECK],
                        "interval": "200ms",
                        "timeout": "2s",
                    },
                    consul={"check": {"tcp": True, "interval": "1s"}},
                ),
                _service("single", replicas=1, failover=failover),
            ],
        }
    ]


@dataclass
class Run:
    """One controller process: its argv, exit status and output (stdout and stderr together)."""

    argv: list[str]
    proc: subprocess.Popen[str]
    log: Path
    status: int | None = None
    killed: bool = False  # by the soak (the kill-controller fault)

    def ended(self, timeout: float = 600) -> bool:
        """Whether it ended within `timeout` (if not, it is killed: the round goes on)."""
        try:
            self.status = self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.status = self.proc.wait()
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def summary(self) -> str:
        return f"{self.last_line()}  [{self.log}]"

    def last_line(self) -> str:
        lines = [line for line in self.output().splitlines() if line.strip()]
        return lines[-1][:160] if lines else "(nothing printed yet)"


@dataclass
class World:
    """The lab, its hosts (name -> address), the playbook's current wanted values and the work dir."""

    lab: Lab
    work: Path
    inventory: Path
    hosts: dict[str, str]
    wanted: dict[str, str] = field(default_factory=lambda: {"v": "v1", "bad_host": "none", "conf": "good"})
    runs: int = 0
    disk_full_at: dict[str, float] = field(default_factory=dict)  # host -> when its last full disk began
    orphans: set[tuple[str, int]] = field(default_factory=set)  # (host, port) an orphan docker-proxy holds

    @classmethod
    def up(cls, directory: Path, count: int) -> World:
        lab = Lab(directory)
        inventory = lab.up(count, 0, lambda line: print(f"  lab: {line}", flush=True))
        data = json.loads("\n".join(line for line in inventory.read_text().splitlines() if not line.startswith("#")))
        hosts = {n: str(h["ansible_host"]) for n, h in data["all"]["children"]["docker"]["hosts"].items()}
        work = directory / "soak"
        work.mkdir(exist_ok=True)
        # The lock host is named (the clock fault shims its clock); a killed controller's lock expires soon.
        overlay = {"all": {"vars": {"pushorch_lock_host": next(iter(hosts)), "pushorch_lock_ttl": 30}}}
        (work / "lock.yml").write_text(json.dumps(overlay))
        world = cls(lab, work, inventory, hosts)
        world.write()
        return world

    @property
    def lock_host(self) -> str:
        return next(iter(self.hosts))

    @property
    def playbook(self) -> Path:
        return self.work / "soak.yml"

    def write(self, **values: str) -> None:
        """The playbook with `wanted` (updated by `values`) as its vars."""
        self.wanted.update(values)
        self.playbook.write_text(json.dumps(playbook(**self.wanted), indent=1))

    def start(self, command: str, *args: str, lock_file: str = "run.lock") -> Run:
        """`pushorch COMMAND -i INV ... ARGS` in a subprocess, its output in a numbered log."""
        self.runs += 1
        argv = [sys.executable, "-m", "pushorch", command, "-i", str(self.inventory), "-i", str(self.work / "lock.yml")]
        if command != "plan":  # the local run lock is the mutating commands' own
            argv += ["--lock-file", str(self.work / lock_file)]
        argv += list(args)
        log = self.work / f"run-{self.runs:04d}-{command}.log"
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        with log.open("w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=self.work)
        return Run(argv, proc, log)

    def run(self, command: str, *args: str, timeout: float = 600) -> Run:
        started = self.start(command, *args)
        started.ended(timeout)
        return started

    def sh(self, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A shell script on a lab host, through `docker exec` (never through pushorch's own path)."""
        argv = ["docker", "exec", self.lab.container(host), "sh", "-c", script]
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout}s")

    def wait_ready(self, host: str, timeout: float = 90) -> bool:
        """sshd and the host's dockerd answer (a restarted or healed host)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.sh(host, "docker info >/dev/null 2>&1 && pgrep -x sshd >/dev/null", timeout=20)
            if done.returncode == 0:
                return True
            time.sleep(0.5)
        return False

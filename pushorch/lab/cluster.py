"""`pushorch lab up | down | status`: lab hosts as containers on a network of the lab's own.

A lab is its directory: every object it creates is named `pushorch-lab-<id>-...` (id: a digest of
the directory's path) and labelled pushorch.lab=1 and pushorch.lab.dir=<directory>, on a network
and /24 subnet of its own, so two labs (a developer's and a test run's) run side by side and `down`
removes exactly its own. Host keys are generated here and mounted in, so the lab's known_hosts is
written before any host starts and keys are verified as in production.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pushorch.lab import appimages, image, registry, tlsgen
from pushorch.lab.shell import LabError, container_state, docker, flags, run

LABEL = "pushorch.lab=1"
PREFIX = "pushorch-lab-"
# Labs pick a free /24 in 172.28.100.0-172.28.249.0, starting from one their id chooses.
SUBNET_BASE, SUBNET_CHOICES = "172.28.{}.0/24", range(100, 250)
# What a container needs to run its own dockerd without --privileged (which fails on these machines).
CAPABILITIES = [
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
]


@dataclass(frozen=True, slots=True)
class LabHost:
    name: str
    address: str
    bare: bool
    edge: bool = False  # an ingress host (group `edge`): a bare host the ingress proxy goes on


def plan_hosts(subnet: str, count: int, bare: int, edges: int = 0) -> list[LabHost]:
    """lab-1..N (with Docker) from .11, then bare-1..K; edge-1..E from .201; .2 is the registry."""
    network = ipaddress.ip_network(subnet)
    base = int(network.network_address)
    hosts = [LabHost(f"lab-{i}", str(ipaddress.ip_address(base + 10 + i)), False) for i in range(1, count + 1)]
    hosts += [LabHost(f"bare-{i}", str(ipaddress.ip_address(base + 10 + count + i)), True) for i in range(1, bare + 1)]
    hosts += [LabHost(f"edge-{i}", str(ipaddress.ip_address(base + 200 + i)), True, True) for i in range(1, edges + 1)]
    return hosts


def _keygen(path: Path) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run("keys: ssh-keygen", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pushorch-lab", "-f", str(path)])


def _subnets_in_use() -> set[str]:
    names = docker("networks", "network", "ls", "-q").split()
    if not names:
        return set()
    fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}"
    return set(docker("networks", "network", "inspect", "--format", fmt, *names, check=False).split())


def free_subnet(lab_id: str) -> str:
    """A /24 no docker network uses yet, tried from the one the lab's id points at."""
    used = _subnets_in_use()
    start = int(lab_id, 16) % len(SUBNET_CHOICES)
    for step in range(len(SUBNET_CHOICES)):
        subnet = SUBNET_BASE.format(SUBNET_CHOICES[(start + step) % len(SUBNET_CHOICES)])
        if subnet not in used:
            return subnet
    raise LabError("network: every 172.28.100-249.0/24 subnet is in use; give one with --subnet")


class Lab:
    """One lab, its files in `directory` (default .lab/ in the project)."""

    def __init__(self, directory: Path, subnet: str | None = None) -> None:
        self.dir = directory.resolve()
        self.subnet = subnet  # None: the one lab.json remembers, else a free one
        self.state_file = self.dir / "lab.json"
        self.id = hashlib.sha256(str(self.dir).encode()).hexdigest()[:6]
        self.prefix = f"{PREFIX}{self.id}-"
        self.network = f"{PREFIX}{self.id}"
        self.registry = self.prefix + "registry"

    def container(self, host: str) -> str:
        """The container that is lab host `host` (lab-1, bare-1)."""
        return self.prefix + host

    # -- up ---------------------------------------------------------------------------------------
    def up(
        self, count: int, bare: int, say: Callable[[str], None], secure_consul: bool = False, edges: int = 0
    ) -> Path:
        """Hosts, registries and the inventory; `secure_consul`: the hosts' Consul agents enforce ACLs
        (default deny, one token) and serve HTTPS only (8501, a CA the lab makes), as production does;
        `edges`: ingress hosts (group `edge`, bare: pushorch installs the proxy there)."""
        if docker("docker", "info", "--format", "{{.ServerVersion}}", check=False).strip() == "":
            raise LabError("docker: no Docker daemon answers (start dockerd, or run scripts/setup)")
        state = self._load_state()
        bare_image, full_image = image.ensure_images(say)
        subnet = self._ensure_network(self.subnet or state.get("subnet"))
        hosts = plan_hosts(subnet, count, bare, edges)
        self._keys(hosts)
        self._consul_files(hosts, secure_consul)
        registry_port = registry.ensure_registry(self, full_image, subnet, int(state.get("registry_port", 0)), say)
        lab_registry = f"{registry.registry_address(subnet)}:5000"
        registry.ensure_auth_registry(self, full_image, subnet, say)
        for host in hosts:
            trusted = f"{lab_registry},{registry.registry_address(subnet, 3)}:5000"  # both plain-HTTP registries
            self._ensure_host(host, bare_image if host.bare else full_image, trusted, secure_consul, say)
        self._remove_extra(hosts)
        self._wait_ready(hosts, say)
        pushed = state.get("apps_pushed") == appimages.recipe_digest() and state.get("registry_port")
        # The state file can outlive the registry (another lab dir recreated it): ask the registry too.
        if not pushed or not appimages.in_registry(f"127.0.0.1:{registry_port}"):
            appimages.build_and_push(f"127.0.0.1:{registry_port}", say)
        self._save_state(
            {
                "subnet": subnet,
                "registry_port": registry_port,
                "apps_pushed": appimages.recipe_digest(),
                "hosts": [h.name for h in hosts],
                "secure_consul": secure_consul,
            }
        )
        return self._write_inventory(hosts, lab_registry, subnet, secure_consul)

    def _ensure_network(self, subnet: str | None) -> str:
        """The lab's network (created when missing); returns its subnet."""
        if docker("network", "network", "ls", "-q", "--filter", f"name=^{self.network}$").strip():
            fmt = "{{range .IPAM.Config}}{{.Subnet}}{{end}}"
            return docker("network", "network", "inspect", "--format", fmt, self.network).strip()
        if not subnet or (self.subnet is None and subnet in _subnets_in_use()):
            subnet = free_subnet(self.id)  # lab.json's subnet is taken by now: another lab has it
        labels = flags("--label", [LABEL, f"pushorch.lab.dir={self.dir}"])
        docker("network", "network", "create", "--driver", "bridge", "--subnet", subnet, *labels, self.network)
        return subnet

    def _keys(self, hosts: list[LabHost]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _keygen(self.dir / "id_ed25519")
        lines = []
        for host in hosts:
            key = self.dir / "hostkeys" / host.name / "ssh_host_ed25519_key"
            _keygen(key)
            kind, body = Path(f"{key}.pub").read_text().split()[:2]
            lines.append(f"{host.address} {kind} {body}\n")
            (key.parent / "authorized_keys").write_text((self.dir / "id_ed25519.pub").read_text())
            # The Consul stand-in's peers: every other host that runs one (its catalog spans them).
            agents = [f"{h.address}:8500\n" for h in hosts if not h.bare and h.name != host.name]
            (key.parent / "consul-peers").write_text("".join(agents))
            # KV and sessions are the cluster's: the first host with an agent serves them for all.
            first = next((h for h in hosts if not h.bare), None)
            server = f"{first.address}:8500\n" if first is not None and first.name != host.name else ""
            (key.parent / "consul-server").write_text(server)
        (self.dir / "known_hosts").write_text("".join(lines))

    def _consul_files(self, hosts: list[LabHost], secure: bool) -> None:
        """Each host's Consul agent settings (consul-agent.json), token file and TLS files, mounted at
        /etc/ssh/lab; none when the agents run open (plain HTTP on 8500, no ACLs)."""
        token_file = self.dir / "consul-token"
        if secure:
            if not token_file.exists():
                token_file.touch(mode=0o600)
                token_file.write_text(str(uuid.uuid4()))
            ca, cert, key = tlsgen.ensure_certificates(self.dir / "consul-tls", [h.address for h in hosts])
        for host in hosts:
            where = self.dir / "hostkeys" / host.name
            names = ("consul-agent.json", "consul-token", "consul-ca.pem", "consul-server.pem", "consul-server-key.pem")
            leaves: dict[str, bytes | None] = dict.fromkeys(names)
            if secure:
                settings = {"acl_token": token_file.read_text().strip(), "http_port": -1, "https_port": 8501}
                settings |= {f"{k}_file": f"/etc/ssh/lab/consul-{v}.pem" for k, v in [("cert", "server"), ("ca", "ca")]}
                settings["key_file"] = "/etc/ssh/lab/consul-server-key.pem"
                leaves = {
                    "consul-agent.json": json.dumps(settings).encode(),
                    "consul-token": token_file.read_bytes(),
                    "consul-ca.pem": ca.read_bytes(),
                    "consul-server.pem": cert.read_bytes(),
                    "consul-server-key.pem": key.read_bytes(),
                }
            for leaf, content in leaves.items():
                if content is None:
                    (where / leaf).unlink(missing_ok=True)
                else:
                    (where / leaf).touch(mode=0o600)
                    (where / leaf).write_bytes(content)

    def _ensure_host(
        self, host: LabHost, host_image: str, lab_registry: str, secure: bool, say: Callable[[str], None]
    ) -> None:
        container = self.container(host.name)
        state = container_state(container)
        consul = "secure" if secure else "open"  # the stand-in reads its settings when it starts
        wanted = (host_image, image.files_digest(), str(self.dir), consul)
        if state and (state["image"], state["files"], state["dir"], state["consul"]) == wanted:
            if state["running"] != "true":
                say(f"host {host.name}: start")
                docker(f"host {host.name}: start", "start", container)
            return
        if state:
            docker(f"host {host.name}: remove outdated", "rm", "-f", "-v", container)
        say(f"host {host.name}: create ({host.address}{', bare' if host.bare else ''})")
        volumes = [
            f"{self.dir / 'hostkeys' / host.name}:/etc/ssh/lab:ro",
            f"{image.files_dir()}:{image.FILES_MOUNT}:ro",
        ]
        # The inner dockerd's data on a volume (overlay2 cannot sit on the container's overlay root);
        # bare hosts get one too, for the Docker that `apply` installs on them.
        volumes.append(f"{container}-docker:/var/lib/docker")
        args = ["run", "-d", "--name", container, "--hostname", host.name, *self.labels()]
        args += ["--label", f"pushorch.lab.consul={consul}"]
        args += ["--network", self.network, "--ip", host.address, *CAPABILITIES, *flags("-v", volumes)]
        docker(f"host {host.name}: run", *args, "-e", f"PUSHORCH_LAB_REGISTRY={lab_registry}", host_image)

    def labels(self) -> list[str]:
        """What `down` and `up` recognise: the lab label, its directory and the files it mounts."""
        labels = [LABEL, f"pushorch.lab.dir={self.dir}", f"pushorch.lab.files={image.files_digest()}"]
        return flags("--label", labels)

    def _remove_extra(self, hosts: list[LabHost]) -> None:
        wanted = {self.container(h.name) for h in hosts} | {self.registry, self.prefix + "registry-auth"}
        for name in self._containers():
            if name not in wanted:
                docker("remove extra host", "rm", "-f", "-v", name)

    def _wait_ready(self, hosts: list[LabHost], say: Callable[[str], None], timeout: float = 60) -> None:
        """sshd answering on every host, and dockerd on every host that has one."""
        deadline = time.monotonic() + timeout
        pending = {h.name: h for h in hosts}
        while pending and time.monotonic() < deadline:
            for name, host in list(pending.items()):
                if _ssh_banner(host.address) and (host.bare or _inner_docker_ok(self.container(host.name))):
                    del pending[name]
            if pending:
                time.sleep(0.3)
        if pending:
            logs = docker("logs", "logs", "--tail", "20", self.container(next(iter(pending))), check=False)
            raise LabError(f"hosts not ready after {timeout:g}s: {', '.join(sorted(pending))}; last log: {logs[-500:]}")
        say(f"hosts ready: {len(hosts)}")

    def _write_inventory(self, hosts: list[LabHost], lab_registry: str, subnet: str, secure_consul: bool) -> Path:
        def group(members: list[LabHost]) -> dict[str, object]:
            return {h.name: {"ansible_host": h.address} for h in members}

        inventory = {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_port": 22,
                    "ansible_ssh_private_key_file": str(self.dir / "id_ed25519"),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.dir / 'known_hosts'}",
                    "lab_registry": lab_registry,
                    "lab_registry_auth": f"{registry.registry_address(subnet, 3)}:5000",
                    "lab_registry_user": registry.REGISTRY_USER,
                    "lab_registry_password_file": str(self.dir / "registry-password"),
                    **(
                        {
                            "consul_http_addr": "https://127.0.0.1:8501",
                            "consul_cacert": str(self.dir / "consul-tls" / "ca.pem"),
                            "consul_http_token_file": "/etc/ssh/lab/consul-token",
                        }
                        if secure_consul
                        else {}
                    ),
                },
                "children": {
                    "docker": {"hosts": group([h for h in hosts if not h.bare])},
                    "web": {"children": {"docker": None}},
                    "app": {"children": {"docker": None}},
                    "bare": {"hosts": group([h for h in hosts if h.bare and not h.edge])},
                    "edge": {"hosts": group([h for h in hosts if h.edge])},
                },
            }
        }
        path = self.dir / "inventory.yml"
        path.write_text(
            "# written by `pushorch lab up`; host keys verified against known_hosts beside it\n"
            + json.dumps(inventory, indent=2)
            + "\n"
        )
        return path

    # -- down / status ----------------------------------------------------------------------------
    def _containers(self) -> list[str]:
        out = docker("list", "ps", "-a", "--filter", f"label=pushorch.lab.dir={self.dir}", "--format", "{{.Names}}")
        return [n for n in out.split() if n.startswith(self.prefix)]

    def down(self, say: Callable[[str], None], images: bool = False) -> None:
        names = self._containers()
        if names:
            say(f"remove {len(names)} containers")
            docker("remove containers", "rm", "-f", "-v", *names)
        volumes = [v for v in docker("volumes", "volume", "ls", "-q").split() if v.startswith(self.prefix)]
        if volumes:
            docker("remove volumes", "volume", "rm", "-f", *volumes)
        if docker(
            "network", "network", "ls", "-q", "--filter", f"name=^{self.network}$", "--filter", f"label={LABEL}"
        ).strip():
            docker("remove network", "network", "rm", self.network)
        if images:
            for name in image.image_names():
                docker("remove image", "image", "rm", "-f", name, check=False)
        leaves = ("inventory.yml", "known_hosts", "id_ed25519", "id_ed25519.pub", "registry.yml", "lab.json")
        for leaf in (*leaves, "registry-auth.yml", "registry.htpasswd", "registry-password", "consul-token"):
            (self.dir / leaf).unlink(missing_ok=True)
        shutil.rmtree(self.dir / "hostkeys", ignore_errors=True)
        shutil.rmtree(self.dir / "consul-tls", ignore_errors=True)
        if self.dir.exists() and not any(self.dir.iterdir()):
            self.dir.rmdir()

    def status(self) -> list[dict[str, str]]:
        rows = []
        for name in sorted(self._containers()):
            data = json.loads(docker("inspect", "container", "inspect", name))[0]
            networks = data["NetworkSettings"]["Networks"]
            address = networks.get(self.network, {}).get("IPAddress", "")
            running = data["State"]["Running"]
            if name == self.registry:
                health = "registry" if running else "stopped"
            elif not running:
                health = "stopped"
            elif not _ssh_banner(address):
                health = "sshd not answering"
            elif data["Config"]["Image"].startswith("pushorch-lab-host:bare"):
                health = "ok (bare: no docker)"
            else:
                health = "ok" if _inner_docker_ok(name) else "dockerd not answering"
            rows.append(
                {
                    "host": name.removeprefix(self.prefix),
                    "address": address,
                    "state": data["State"]["Status"],
                    "health": health,
                }
            )
        return rows

    def _load_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")


def _ssh_banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1) as conn:
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _inner_docker_ok(container: str) -> bool:
    out = docker("inner docker", "exec", container, "docker", "info", "--format", "{{.ServerVersion}}", check=False)
    return bool(out.strip())


def default_dir() -> Path:
    return Path(os.environ.get("PUSHORCH_LAB_DIR", ".lab"))

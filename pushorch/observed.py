"""What one probe saw on a host: OS, Docker, the containers pushorch manages, files, Consul definitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    """A container that carries pushorch's labels."""

    id: str
    name: str
    image: str
    image_id: str
    state: str  # running, exited, created, ...
    health: str | None  # healthy, unhealthy, starting, or None without a HEALTHCHECK
    labels: Mapping[str, str]
    ports: Mapping[str, str]  # "8080/tcp" -> "0.0.0.0:8080"
    created: str
    finished: str = ""  # when it last stopped (ISO 8601); orders kept containers for rollback
    networks: tuple[str, ...] = ()  # the networks it joins, running or not

    @property
    def service(self) -> str:
        return self.labels.get("pushorch.service", "")

    @property
    def spec_hash(self) -> str:
        return self.labels.get("pushorch.spec-hash", "")

    @property
    def version(self) -> str:
        return self.labels.get("pushorch.version", "")

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True, slots=True)
class ObservedFile:
    """A path the spec manages: whether it exists, its kind, checksum and attributes."""

    path: str
    exists: bool
    kind: str = ""  # file, directory, other
    sha256: str = ""
    mode: str = ""  # "0644"
    owner: str = ""
    group: str = ""


@dataclass(frozen=True, slots=True)
class ObservedKey:
    """One key of Consul's KV store as it was read."""

    value: bytes
    flags: int
    modify_index: int


@dataclass(frozen=True, slots=True)
class ObservedHost:
    """One host as the probe saw it; `error` is set when it could not be probed."""

    name: str
    reachable: bool = True
    error: str | None = None
    os_id: str = ""
    os_version: str = ""
    package_manager: str = ""
    systemd: bool = False
    docker_installed: bool = False
    docker_running: bool = False
    containers: tuple[ObservedContainer, ...] = ()
    images: Mapping[str, str] = field(default_factory=dict)  # reference -> image id, for the spec's images
    # Docker networks (probed when the host's plays use networks): name -> the playbook that created it
    # ("" when pushorch did not).
    networks: Mapping[str, str] = field(default_factory=dict)
    # Containers a replacement started and no gate has passed yet (an interrupted run's): names.
    ungated: frozenset[str] = frozenset()
    # Containers a rollback retired (the next plain rollback does not go back to them): names.
    rolled_back: frozenset[str] = frozenset()
    # `rollback --hold`: service -> (the playbook's spec hash it refuses, the kept container it holds to).
    holds: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # Services another playbook adopted: service -> its owner now (a label cannot change; this can).
    owners: Mapping[str, str] = field(default_factory=dict)
    # Instances the local Consul agent holds in maintenance mode: service id -> reason (read only on
    # hosts with a `drain: maintenance` service).
    maintenance: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, ObservedFile] = field(default_factory=dict)
    consul_binary: bool = False
    consul_agent: bool = False
    ingress_running: bool = False  # the ingress proxy's master process (commands/haproxy.py)
    consul_reload_pending: bool = False  # a reload failed after a definition was written (commands/marks.py)
    # Read on one host only (the run's KV writer; None elsewhere): key -> (value, flags, ModifyIndex),
    # None for a missing key; and pushorch's manifests (service -> its manifest entry).
    kv: Mapping[str, ObservedKey | None] | None = None
    kv_manifests: Mapping[str, ObservedKey] = field(default_factory=dict)

    def containers_of(self, service: str) -> list[ObservedContainer]:
        return [c for c in self.containers if c.service == service]

    def owner_of(self, service: str) -> str | None:
        """The playbook that owns the service's containers here: the owners record (it can change
        hands), else the first container's label (stamped at creation)."""
        mine = self.containers_of(service)
        label = "pushorch.playbook"  # planner.labels.PLAYBOOK (the planner imports this module)
        return self.owners.get(service) or (mine[0].labels.get(label) if mine else None)


@dataclass(frozen=True, slots=True)
class SavedFile:
    """A file as it was before a rollout wrote it: what a revert puts back, byte for byte."""

    path: str
    data: bytes | None  # None: it did not exist (a revert removes it)
    mode: str = "644"  # octal, as stat prints it
    uid: str = "0"
    gid: str = "0"

"""A rollout: a service's replacements in batches, each behind a gate, with its jobs before them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from pushorch.actions.steps import Action, ReloadMode, WriteFile
from pushorch.secret import REDACTED

GateKind = Literal["http", "tcp", "docker", "cmd", "consul", "running"]
Order = Literal["stop-first", "start-first"]


@dataclass(frozen=True, slots=True)
class Gate:
    """When a new instance counts as up: its check stays healthy for min_healthy_time before the deadline.

    kind "running" (a service without `health`) only asks that the container keeps running.
    """

    kind: GateKind
    port: int | None = None  # the container port probed by http/tcp
    path: str = "/"
    expect: tuple[int, ...] = ()
    cmd: tuple[str, ...] = ()
    consul_id: str = ""
    interval: float = 1.0
    timeout: float = 2.0
    min_healthy_time: float = 5.0
    deadline: float = 120.0

    def describe(self) -> str:
        what = {
            "http": f"http :{self.port}{self.path}",
            "tcp": f"tcp :{self.port}",
            "cmd": "cmd " + " ".join(self.cmd),
            "consul": f"consul check {self.consul_id}",
        }.get(self.kind, self.kind)
        return f"{what}, healthy {self.min_healthy_time:g}s within {self.deadline:g}s"


@dataclass(frozen=True, slots=True)
class RestartContainer(Action):
    """A stopped instance of the spec started again (drift). A rollout of its service starts only once
    it passes its gate: its own instance's (a Consul check names one host's instance)."""

    service: str = ""
    name: str = ""
    version: str = ""  # of the container started again (the history says what runs after it)
    gate: Gate = Gate("running")
    verb: ClassVar[str] = "restart"

    def subject(self) -> str:
        return f"{self.service} ({self.name})"


@dataclass(frozen=True, slots=True)
class IngressTarget:
    """Where the ingress hosts reach one host's instance: its address and the host port it publishes
    for `container_port`, read from the running container (fixed, or Docker's choice: start-first)."""

    edges: tuple[str, ...]  # the ingress hosts: drained there first, routed there after its gate
    address: str
    container_port: int
    inter: str  # HAProxy's check interval, for a server added at runtime


@dataclass(frozen=True, slots=True)
class ReplaceContainer(Action):
    """Put one host's instance of a service on a new container, behind a gate; on failure, back on the old.

    stop-first: drain (deregister) -> stop old -> start new -> gate -> register.
    start-first: start new (dynamic host port) -> gate -> register new -> stop old.
    The old containers are stopped, not removed, so a failed gate (or `rollback`) can start them again.
    """

    service: str = ""
    version: str = ""
    old_version: str = ""
    name: str = ""  # the new container
    argv: tuple[str, ...] = ()  # docker run; empty when `name` is a kept container to start again
    env_file: tuple[str, str] | None = None
    old: tuple[str, ...] = ()  # running containers this one replaces
    order: Order = "stop-first"
    gate: Gate = field(default_factory=lambda: Gate("running"))
    consul_path: str = ""  # "" = no Consul definition
    consul_content: str = ""
    consul_reload: ReloadMode = ""
    dynamic_port: tuple[int, int] | None = None  # start-first: (spec host port, container port) to look up
    stop_timeout: int = 10
    drop: tuple[str, ...] = ()  # kept containers beyond `keep`, removed once the new one passes
    recreate: bool = False  # an unhealthy instance replaced in place by a fresh one of the same spec
    restart: bool = False  # `pushorch restart`: the same container restarted (drain, restart, gate, register)
    drain: Literal["deregister", "maintenance"] = "deregister"  # how the old instance leaves Consul
    held: bool = False  # in maintenance set by hand: the rollout leaves it on (never ends what it did not start)
    drain_delay: float = 0.0  # seconds between leaving Consul and stopping (start-first: after the switch)
    ingress: IngressTarget | None = None  # behind the ingress: drained there first, routed after its gate
    files: tuple[WriteFile, ...] = ()  # the service's config files: written by this step, put back on its way back
    connect: tuple[tuple[str, tuple[str, ...]], ...] = ()  # networks joined after the first: (name, aliases)
    # `rollback`: the config files come from this kept container's snapshot (marks.py), not the playbook;
    # the containers it retires are marked rolled back; `hold` (the playbook's spec hash) is written as
    # the service's hold once it passed.
    snapshot: str = ""
    rollback: bool = False
    hold: str = ""
    verb: ClassVar[str] = "replace"

    @property
    def shown_verb(self) -> str:
        if self.restart:
            return "restart"
        if self.recreate:
            return "recreate"
        return self.verb if self.old else "start"  # nothing to replace: a first start

    def subject(self) -> str:
        if not self.old or self.restart:
            return f"{self.service} {self.version} as {self.name} (gate: {self.gate.describe()})"
        start = "start kept " if not self.argv else ""
        return (
            f"{self.service} {self.old_version} -> {self.version}, {start}{self.name}"
            f" ({self.order}, gate: {self.gate.describe()})"
        )


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a service's job, on `host`, before the rollout's first batch."""

    host: str
    name: str
    argv: tuple[str, ...]
    env_file: tuple[str, str] | None = None  # (path, content): secrets, never argv
    timeout: float = 600.0
    become: bool | None = None
    container: str = ""  # the job's container: removed when the job fails or runs out of time

    def to_json(self) -> dict[str, Any]:
        env_file = [self.env_file[0], REDACTED] if self.env_file else None
        return {"host": self.host, "name": self.name, "argv": list(self.argv), "env_file": env_file}


@dataclass(frozen=True, slots=True)
class Rollout:
    """One service's replacements in batches: a batch starts only when every gate of the previous passed."""

    service: str
    batches: tuple[tuple[ReplaceContainer, ...], ...]
    canary: int = 0  # hosts in the first (canary) batch; 0 = none
    delay: float = 0.0
    max_failures: int = 0
    max_unreachable: int = 0
    auto_revert: bool = True
    image_repository: str = ""  # once complete: this repository's images no container uses go, ...
    keep_images: int = 2  # ... beyond the newest keep_images
    depends_on: tuple[str, ...] = ()  # services whose rollouts (in this plan) must complete first
    jobs: tuple[JobRun, ...] = ()  # run once, in order, before the first batch
    hooks: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (pre_deploy|post_deploy|on_abort, argv) on the controller
    hook_timeout: float = 300.0

    @property
    def hosts(self) -> list[str]:
        return [a.host for batch in self.batches for a in batch]

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("batches", "jobs")}
        jobs = [j.to_json() for j in self.jobs]
        return {**data, "jobs": jobs, "batches": [[a.to_json() for a in batch] for batch in self.batches]}

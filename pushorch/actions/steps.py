"""The closed set of plan steps. A Plan is data: what `plan` prints is exactly what `apply` runs."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from pushorch.secret import REDACTED, Secret, redact

GateKind = Literal["http", "tcp", "docker", "cmd", "consul", "running"]
Order = Literal["stop-first", "start-first"]
PathState = Literal["directory", "touch", "absent", "attributes"]
ReloadMode = Literal["binary", "api", ""]  # "": nothing to reload


@dataclass(frozen=True, slots=True)
class Action:
    """One step on one host, with the reason the planner chose it."""

    host: str
    reason: str
    become: bool | None = None  # None: the connection's setting; the play's or task's otherwise
    verb: ClassVar[str] = "do"

    @property
    def kind(self) -> str:
        return type(self).__name__

    def subject(self) -> str:
        return ""

    @property
    def shown_verb(self) -> str:
        """The verb this step is shown with (a class's verb, unless the step says otherwise)."""
        return self.verb

    def describe(self) -> str:
        return f"{self.shown_verb} {self.subject()}".strip() + (f" ({self.reason})" if self.reason else "")

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict would deep-copy Secrets
        if isinstance(data.get("gate"), Gate):
            data["gate"] = {f.name: getattr(data["gate"], f.name) for f in fields(data["gate"])}
        if data.get("secret") and "content" in data:
            data["content"] = REDACTED
        if data.get("env_file"):
            data["env_file"] = [data["env_file"][0], REDACTED]
        if data.get("files"):  # a rollout's config files: each as its own step shows it (secrets masked)
            data["files"] = [f.to_json() for f in data["files"]]
        return {"action": self.kind, **redact(data)}


@dataclass(frozen=True, slots=True)
class InstallDocker(Action):
    package_manager: str = ""
    packages: tuple[str, ...] = ()
    systemd: bool = False
    verb: ClassVar[str] = "install"

    def subject(self) -> str:
        return f"docker ({' '.join(self.packages)} via {self.package_manager})"


@dataclass(frozen=True, slots=True)
class StartDocker(Action):
    systemd: bool = False
    verb: ClassVar[str] = "start"

    def subject(self) -> str:
        return "docker daemon"


@dataclass(frozen=True, slots=True)
class WriteFile(Action):
    path: str = ""
    content: str = ""
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    secret: bool = False
    notify: tuple[str, ...] = ()
    verb: ClassVar[str] = "write"

    def subject(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class EnsurePath(Action):
    path: str = ""
    state: PathState = "directory"
    mode: str | None = None
    owner: str | None = None
    group: str | None = None
    notify: tuple[str, ...] = ()
    verb: ClassVar[str] = "ensure"

    def subject(self) -> str:
        return f"{self.state} {self.path}"


@dataclass(frozen=True, slots=True)
class RunCommand(Action):
    argv: tuple[str, ...] = ()
    chdir: str | None = None
    become: bool | None = None
    notify: tuple[str, ...] = ()
    verb: ClassVar[str] = "run"

    def subject(self) -> str:
        return " ".join(self.argv)[:80]


@dataclass(frozen=True, slots=True)
class PullImage(Action):
    image: str = ""
    registry: str | None = None
    username: str | None = None
    password: Secret | None = None
    verb: ClassVar[str] = "pull"

    def subject(self) -> str:
        return self.image


@dataclass(frozen=True, slots=True)
class ShipImage(Action):
    image: str = ""
    verb: ClassVar[str] = "ship"

    def subject(self) -> str:
        return f"{self.image} (docker save | docker load)"


@dataclass(frozen=True, slots=True)
class RestartContainer(Action):
    service: str = ""
    name: str = ""
    verb: ClassVar[str] = "restart"

    def subject(self) -> str:
        return f"{self.service} ({self.name})"


@dataclass(frozen=True, slots=True)
class RemoveContainer(Action):
    service: str = ""
    name: str = ""
    verb: ClassVar[str] = "remove"

    def subject(self) -> str:
        return f"{self.service} ({self.name})"


@dataclass(frozen=True, slots=True)
class WriteConsul(Action):
    service: str = ""
    path: str = ""
    content: str = ""
    verb: ClassVar[str] = "register"

    def subject(self) -> str:
        return f"{self.service} in consul ({self.path})"


@dataclass(frozen=True, slots=True)
class RemoveConsul(Action):
    service: str = ""
    path: str = ""
    verb: ClassVar[str] = "deregister"

    def subject(self) -> str:
        return f"{self.service} from consul ({self.path})"


@dataclass(frozen=True, slots=True)
class CreateNetwork(Action):
    name: str = ""
    driver: str = "bridge"
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    subnet: str | None = None
    gateway: str | None = None
    verb: ClassVar[str] = "create"

    def subject(self) -> str:
        return f"network {self.name}"


@dataclass(frozen=True, slots=True)
class RemoveNetwork(Action):
    name: str = ""
    verb: ClassVar[str] = "remove"

    def subject(self) -> str:
        return f"network {self.name}"


@dataclass(frozen=True, slots=True)
class WriteKv(Action):
    """A key of Consul's KV store, written check-and-set: `cas` is the ModifyIndex it was read at
    (0: it did not exist), so a key someone changed since is not overwritten blindly."""

    service: str = ""
    key: str = ""
    value: str | Secret = ""
    cas: int = 0
    flags: int = 0
    verb: ClassVar[str] = "set"

    def subject(self) -> str:
        return f"consul kv {self.key}" + (f" for {self.service}" if self.service else "")


@dataclass(frozen=True, slots=True)
class DeleteKv(Action):
    service: str = ""
    key: str = ""
    cas: int = 0
    verb: ClassVar[str] = "delete"

    def subject(self) -> str:
        return f"consul kv {self.key}" + (f" of {self.service}" if self.service else "")


@dataclass(frozen=True, slots=True)
class ReloadConsul(Action):
    # `consul reload` (only the binary answers); else the agent's API. Either way the agent validates
    # what it loads and refuses the reload (HTTP 500) when a definition is bad: the only validation
    # Consul offers for a directory of service definitions (`consul validate` checks a whole agent
    # configuration; docs/consul.md).
    binary: bool = True
    written: tuple[str, ...] = ()  # definitions this run wrote: removed again if the reload fails
    verb: ClassVar[str] = "reload"

    def subject(self) -> str:
        return "consul" + ("" if self.binary else " (agent API)")


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
    drain_delay: float = 0.0  # seconds between leaving Consul and stopping (start-first: after the switch)
    files: tuple[WriteFile, ...] = ()  # the service's config files: written by this step, put back on its way back
    connect: tuple[tuple[str, tuple[str, ...]], ...] = ()  # networks joined after the first: (name, aliases)
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


@dataclass(frozen=True, slots=True)
class Plan:
    """Per host, `actions` in order (hosts concurrently); then each rollout, batch by batch."""

    actions: tuple[Action, ...] = ()
    unreachable: dict[str, str] = field(default_factory=dict)
    rollouts: tuple[Rollout, ...] = ()
    # Ansible's serial / max_fail_percentage / any_errors_fatal over the host actions:
    # batches of hosts run one after another (empty: every host at once).
    host_batches: tuple[tuple[str, ...], ...] = ()
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    placed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service -> the hosts that run it
    notes: tuple[str, ...] = ()  # what failover is waiting for ("lab-2: web: unreachable for 12s; ...")

    def consul_hosts(self) -> set[str]:
        """Hosts whose steps talk to their Consul agent (definitions, reloads, drains, consul gates)."""
        consul_steps = (WriteConsul, RemoveConsul, ReloadConsul, WriteKv, DeleteKv)
        talking = {a.host for a in self.actions if isinstance(a, consul_steps)}
        for rollout in self.rollouts:
            talking |= {s.host for b in rollout.batches for s in b if s.consul_reload or s.gate.kind == "consul"}
        return talking

    def by_host(self, rollouts: bool = False) -> dict[str, list[Action]]:
        """Each host's actions in order (with its rollout steps after them when asked), grouped in one
        pass: a fleet's plan holds thousands of actions, so no per-host scans."""
        grouped: dict[str, list[Action]] = {}
        for action in self.steps if rollouts else self.actions:
            grouped.setdefault(action.host, []).append(action)
        return grouped

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys([*(a.host for a in self.actions), *(h for r in self.rollouts for h in r.hosts)]))

    @property
    def steps(self) -> list[Action]:
        """Every action of the plan in the order it runs (rollouts last, batch by batch)."""
        return [*self.actions, *(a for r in self.rollouts for batch in r.batches for a in batch)]

    def __bool__(self) -> bool:
        return bool(self.actions or self.rollouts)

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": [a.to_json() for a in self.actions],
            "rollouts": [r.to_json() for r in self.rollouts],
            "unreachable": self.unreachable,
            "host_batches": [list(b) for b in self.host_batches],
            "max_fail_percentage": self.max_fail_percentage,
            "any_errors_fatal": self.any_errors_fatal,
            "placed": {service: list(hosts) for service, hosts in self.placed.items()},
            "notes": list(self.notes),
        }

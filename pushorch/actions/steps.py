"""The steps a plan runs on one host: Docker, files, paths, images, containers, Consul, networks, KV."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, ClassVar, Literal

from pushorch.secret import REDACTED, Secret, redact

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
        if is_dataclass(data.get("gate")):  # a rollout step's Gate
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
class StopContainer(Action):
    """Retire a container of another spec that still runs beside the serving one: stopped, it is kept
    for `rollback` (counted against `keep`), never removed."""

    service: str = ""
    name: str = ""
    stop_timeout: int = 10
    verb: ClassVar[str] = "stop"

    def subject(self) -> str:
        return f"{self.service} ({self.name})"


@dataclass(frozen=True, slots=True)
class AdoptService(Action):
    """Another playbook now declares the service (it moved): its containers on this host are that
    playbook's from now on (a label cannot change: marks.py keeps the owner)."""

    service: str = ""
    owner: str = ""
    verb: ClassVar[str] = "adopt"

    def subject(self) -> str:
        return f"{self.service} for {self.owner}"


@dataclass(frozen=True, slots=True)
class EndMaintenance(Action):
    """Take an instance out of the maintenance mode a rollout put it in (and never took it out of: the
    run was stopped between drain and register). Maintenance set by hand is never ended."""

    service: str = ""
    service_id: str = ""
    verb: ClassVar[str] = "end maintenance of"

    def subject(self) -> str:
        return self.service_id


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
    pending: bool = False  # a reload failed before (commands/marks.py): its mark goes once this one passes
    verb: ClassVar[str] = "reload"

    def subject(self) -> str:
        return "consul" + ("" if self.binary else " (agent API)")


@dataclass(frozen=True, slots=True)
class InstallIngress(Action):
    package_manager: str = ""
    packages: tuple[str, ...] = ()
    verb: ClassVar[str] = "install"

    def subject(self) -> str:
        return f"ingress proxy ({' '.join(self.packages)} via {self.package_manager})"


@dataclass(frozen=True, slots=True)
class ConfigureIngress(Action):
    # This run's fragments of the configuration (commands/haproxy_config.py): file name -> content.
    # The host assembles them with the fragments of services this run was not given, checks the
    # whole (`haproxy -c`) before it replaces the one loaded, then reloads hitlessly (or starts it).
    fragments: tuple[tuple[str, str], ...] = ()
    systemd: bool = False
    services: tuple[str, ...] = ()  # the services it routes, for the plan's line
    certificates: tuple[tuple[str, Secret], ...] = ()  # (path, certificate and key): written 0600 first
    pruned: tuple[str, ...] = ()  # services --prune takes out of the proxy (their routes and certificates)
    verb: ClassVar[str] = "configure"

    def subject(self) -> str:
        gone = f", removing {', '.join(self.pruned)}" if self.pruned else ""
        return f"ingress for {', '.join(self.services) or 'no service'}{gone}"

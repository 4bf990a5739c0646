"""The closed set of plan steps. A Plan is data: what `plan` prints is exactly what `apply` runs."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from pushorch.secret import REDACTED, Secret, redact


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

    def describe(self) -> str:
        return f"{self.verb} {self.subject()}".strip() + (f" ({self.reason})" if self.reason else "")

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict would deep-copy Secrets
        if data.get("secret") and "content" in data:
            data["content"] = REDACTED
        if data.get("env_file"):
            data["env_file"] = [data["env_file"][0], REDACTED]
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
    state: str = "directory"  # directory | touch | absent | attributes
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
class StartContainer(Action):
    service: str = ""
    name: str = ""
    argv: tuple[str, ...] = ()
    env_file: tuple[str, str] | None = None  # (path, content): secrets, written 0600
    verb: ClassVar[str] = "start"

    def subject(self) -> str:
        return f"{self.service} as {self.name}"


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
class ReloadConsul(Action):
    binary: bool = True
    verb: ClassVar[str] = "reload"

    def subject(self) -> str:
        return "consul" + ("" if self.binary else " (agent API)")


@dataclass(frozen=True, slots=True)
class Plan:
    """Every action, in order; per host, actions run in this order."""

    actions: tuple[Action, ...] = ()
    unreachable: dict[str, str] = field(default_factory=dict)

    def for_host(self, host: str) -> list[Action]:
        return [a for a in self.actions if a.host == host]

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(a.host for a in self.actions))

    def __bool__(self) -> bool:
        return bool(self.actions)

    def to_json(self) -> dict[str, Any]:
        return {"actions": [a.to_json() for a in self.actions], "unreachable": self.unreachable}

"""Desired state: the playbook schema (plays, tasks, services) as frozen pydantic models.

Every key is documented in playbooks/reference.yml; unknown keys are refused.
Models here validate *rendered* values: templates are expanded per host first
(pushorch.load.playbooks), so a templated `port: "{{ app_port }}"` is an int here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from pushorch.secret import Secret

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+)ms)?\s*$"
)
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)


class Model(BaseModel):
    """Base of every schema model: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)


# -- small validated types -------------------------------------------------------------------------


def _name(value: str) -> str:
    """Names become container names, file names and Consul IDs: no '/', no '..', no spaces."""
    if not _NAME.match(value) or ".." in value:
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '_', '.', '-'; starts with a letter or digit; "
            "no '..'; at most 63 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]


def parse_duration(value: Any) -> float:
    """Seconds from 30, 1.5, '30s', '2m', '1h30m', '500ms'."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '2m', '1h30m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds + millis / 1000
    raise ValueError(f"{value!r} is not a duration (a number of seconds or a string like '30s', '2m', '1h30m')")


Duration = Annotated[float, BeforeValidator(parse_duration)]


@dataclass(frozen=True, slots=True)
class Amount:
    """A count or a percentage of some total ('25%')."""

    value: float
    percent: bool = False

    def of(self, total: int, minimum: int = 0) -> int:
        """Resolve against a total, rounding down but never below minimum.

        Worked example: 25% of 10 hosts = 2.5 -> 2 per batch; 25% of 3 hosts = 0.75 -> 0,
        raised to minimum=1 for parallelism so a rollout always makes progress.
        """
        count = int(total * self.value / 100) if self.percent else int(self.value)
        return max(minimum, count)


def _amount(value: Any) -> Amount:
    if isinstance(value, Amount):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Amount(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                number = float(text[:-1])
            except ValueError:
                number = -1
            if 0 <= number <= 100:
                return Amount(number, percent=True)
        elif text.isdigit():
            return Amount(int(text))
    raise ValueError(f"{value!r} is neither a count (0, 1, 2, ...) nor a percentage ('25%')")


CountOrPercent = Annotated[Amount, PlainValidator(_amount)]


def _mode(value: Any) -> str:
    """File modes as octal strings: '0644', '644' or an int already read as octal by YAML."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o7777:
        return f"{value:04o}"
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        return f"{int(value.strip(), 8):04o}"
    raise ValueError(f"{value!r} is not a file mode (write it quoted, as '0644')")


Mode = Annotated[str, PlainValidator(_mode)]


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    raise ValueError("must be a string (mark it !secret)")


SecretStr = Annotated[Secret, PlainValidator(_secret)]


def _env_value(value: Any) -> str | Secret:
    if isinstance(value, (Secret, str)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise ValueError("an env value must be a string, number or boolean")


EnvValue = Annotated[str | Secret, PlainValidator(_env_value)]


def _env(value: Any) -> Any:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
    return value


def _image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError(f"{value!r} is not an image reference (like registry:5000/app:v1)")
    return value


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    return value


AbsPath = Annotated[str, AfterValidator(_absolute)]
Port = Annotated[int, Field(ge=1, le=65535)]


# -- services --------------------------------------------------------------------------------------


class PortMapping(Model):
    """A published port. `host: null` asks Docker for a dynamic host port (needed by start-first)."""

    container: Port
    host: Port | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    bind: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # "8080:80", "80", "127.0.0.1:8080:80", "53:53/udp" as in docker run -p
        if isinstance(value, int) and not isinstance(value, bool):
            return {"container": value, "host": value}
        if not isinstance(value, str):
            return value
        text, _, protocol = value.partition("/")
        parts = text.split(":")
        if len(parts) > 3 or not all(p.isdigit() for p in parts[-2:]):
            raise ValueError(f"{value!r} is not a port mapping (like '8080:80', '127.0.0.1:8080:80/udp')")
        out: dict[str, Any] = {
            "container": int(parts[-1]),
            "host": int(parts[-2]) if len(parts) > 1 else int(parts[-1]),
        }
        if len(parts) == 3:
            out["bind"] = parts[0]
        if protocol:
            out["protocol"] = protocol
        return out


class Volume(Model):
    """A bind mount or named volume."""

    source: str
    target: AbsPath
    read_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ValueError(f"{value!r} is not a volume (like '/srv/data:/data' or 'data:/data:ro')")
            return {"source": parts[0], "target": parts[1], "read_only": len(parts) == 3 and parts[2] == "ro"}
        return value


class HttpCheck(Model):
    path: str = "/"
    port: Port
    expect_status: list[int] = Field(default_factory=lambda: list(range(200, 400)))


class TcpCheck(Model):
    port: Port


class Health(Model):
    """How to tell an instance is healthy; exactly one kind (http, tcp, docker, cmd, consul)."""

    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    docker: bool = False
    cmd: list[str] | None = None
    consul: bool = False
    interval: Duration = 1.0
    timeout: Duration = 2.0

    @model_validator(mode="after")
    def _one_kind(self) -> Health:
        kinds = [k for k in ("http", "tcp", "cmd") if getattr(self, k) is not None]
        kinds += [k for k in ("docker", "consul") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one check kind of http, tcp, docker, cmd, consul (got {kinds or 'none'})")
        return self

    @property
    def kind(self) -> str:
        for kind in ("http", "tcp", "cmd"):
            if getattr(self, kind) is not None:
                return kind
        return "docker" if self.docker else "consul"


class UpdatePolicy(Model):
    """How a changed service rolls out across its hosts."""

    parallelism: CountOrPercent = Amount(1)
    canary: int = Field(0, ge=0)
    order: Literal["stop-first", "start-first"] = "stop-first"
    delay: Duration = 0.0
    min_healthy_time: Duration = 5.0
    healthy_deadline: Duration = 120.0
    max_failures: CountOrPercent = Amount(0)  # hosts whose gate fails, over the whole rollout
    max_unreachable: CountOrPercent = Amount(0)  # hosts lost mid-rollout, counted apart from failures
    auto_revert: bool = True
    keep: int = Field(1, ge=0)
    keep_images: int = Field(2, ge=0)  # newest images of the service's repository kept on a host
    drain: Literal["deregister", "maintenance"] = "deregister"  # how an instance leaves Consul first
    drain_delay: Duration = 0.0  # then wait this long before stopping it (Nomad's shutdown_delay)

    @model_validator(mode="after")
    def _deadline_after_min(self) -> UpdatePolicy:
        if self.healthy_deadline <= self.min_healthy_time:
            raise ValueError("healthy_deadline must be longer than min_healthy_time")
        return self


class Failover(Model):
    """Moving instances off lost or unhealthy hosts (services with `replicas`)."""

    enabled: bool = True
    after: Duration = 60.0
    failback: bool = False


class ConsulCheck(Model):
    """The check written into the Consul definition (defaults follow the service's health)."""

    http: str | None = None
    tcp: bool = False
    interval: Duration = 10.0
    timeout: Duration = 2.0
    deregister_critical_service_after: Duration = 300.0


class ConsulService(Model):
    """A Consul service definition written on every host that runs an instance."""

    enabled: bool = True
    name: Name | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)
    port: Port | None = None
    address: str | None = None
    check: ConsulCheck | None = None
    config_dir: AbsPath = "/etc/consul.d"
    reload: Literal["auto", "binary", "api", "none"] = "auto"
    # Configuration in Consul's KV store: key -> value (templates and secrets allowed), written once
    # for the cluster, check-and-set, only when it changed; removed with --prune.
    kv: dict[str, EnvValue] = Field(default_factory=dict)

    @field_validator("kv")
    @classmethod
    def _kv_keys(cls, kv: dict[str, str | Secret]) -> dict[str, str | Secret]:
        for key in kv:
            if not key or key.startswith("/") or key.endswith("/") or key.startswith("pushorch/"):
                raise ValueError(
                    f"{key!r}: a KV key is a path like app/config/port (no leading or trailing /, "
                    "and pushorch/ is pushorch's own)"
                )
        return kv


class Registry(Model):
    """Credentials for pulling the image; the password is a secret."""

    server: str | None = None
    username: str | None = None
    password: SecretStr | None = None


class Placement(Model):
    """Constraints on where instances may run: a host pattern and required host vars."""

    hosts: str | None = None
    require: dict[str, Any] = Field(default_factory=dict)


class Resources(Model):
    memory: str | None = Field(None, pattern=r"^\d+[bkmg]?$")
    cpus: float | None = Field(None, gt=0)


class LogConfig(Model):
    driver: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


class Ulimit(Model):
    soft: int = Field(ge=-1)
    hard: int = Field(ge=-1)

    @model_validator(mode="before")
    @classmethod
    def _single(cls, value: Any) -> Any:
        return {"soft": value, "hard": value} if isinstance(value, int) and not isinstance(value, bool) else value


class ContainerHealthcheck(Model):
    """The image's HEALTHCHECK, replaced (docker run --health-*), or turned off (`disable: true`)."""

    test: list[str] | str | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=1)
    start_period: Duration | None = None
    disable: bool = False


_CAPABILITY = r"^(ALL|[A-Z_]+)$"
_NETWORK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class Network(Model):
    """A Docker network a play needs on its hosts: created when missing, removed only by --prune."""

    name: Annotated[str, Field(pattern=_NETWORK_NAME)]
    driver: str = "bridge"
    internal: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    subnet: str | None = None
    gateway: str | None = None

    @model_validator(mode="after")
    def _addresses(self) -> Network:
        import ipaddress

        try:
            net = ipaddress.ip_network(self.subnet) if self.subnet else None
            if self.gateway and (net is None or ipaddress.ip_address(self.gateway) not in net):
                raise ValueError("gateway needs a subnet that holds it")
        except ValueError as exc:
            raise ValueError(f"network {self.name}: {exc}") from None
        return self


class ServiceNetwork(Model):
    """A network the service's containers join, and the names other containers reach them by."""

    name: Annotated[str, Field(pattern=_NETWORK_NAME)]
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class Hooks(Model):
    """Commands run on the controller around a service's rollout (Kamal's hooks): a list is argv, a
    string runs through `sh -c`. They get PUSHORCH_SERVICE, PUSHORCH_VERSION, PUSHORCH_FROM_VERSION,
    PUSHORCH_HOSTS and (after) PUSHORCH_RESULT in their environment; a failing pre_deploy stops the
    rollout before any host."""

    pre_deploy: list[str] | str | None = None
    post_deploy: list[str] | str | None = None
    on_abort: list[str] | str | None = None
    timeout: Duration = 300.0


class Build(Model):
    """An image built on the controller from a Docker build context (relative to the playbook): tagged
    with a digest of the context, so an unchanged context builds nothing and changes nothing."""

    context: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)


class Job(Model):
    """A run-once container from the service's new image (a migration): before the rollout's first batch,
    on one host, with the service's env, secrets, volumes and network. Non-zero aborts the rollout."""

    name: Name
    command: list[str] | str
    timeout: Duration = 600.0


class Service(Model):
    """A container service: what runs, where, how it is checked, updated and announced."""

    name: Name
    image: Annotated[str, AfterValidator(_image)]
    version: str | None = None
    source: Literal["pull", "ship"] = "pull"
    registry: Registry | None = None
    replicas: int | None = Field(None, ge=1)
    placement: Placement | None = None
    ports: list[PortMapping] = Field(default_factory=list)
    env: Annotated[dict[str, EnvValue], BeforeValidator(_env)] = Field(default_factory=dict)
    volumes: list[Volume] = Field(default_factory=list)
    command: list[str] | str | None = None
    entrypoint: list[str] | str | None = None
    user: str | None = None
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    labels: dict[str, str] = Field(default_factory=dict)
    log: LogConfig | None = None
    resources: Resources | None = None
    stop_timeout: Duration = 10.0
    # docker run options (each maps to its flag; all part of the spec hash):
    cap_add: list[Annotated[str, Field(pattern=_CAPABILITY)]] = Field(default_factory=list)
    cap_drop: list[Annotated[str, Field(pattern=_CAPABILITY)]] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    ulimits: dict[Annotated[str, Field(pattern=r"^[a-z]+$")], Ulimit] = Field(default_factory=dict)
    extra_hosts: dict[str, str] = Field(default_factory=dict)
    sysctls: dict[str, str | int] = Field(default_factory=dict)
    tmpfs: list[str] = Field(default_factory=list)
    read_only: bool = False
    init: bool = False
    shm_size: str | None = Field(None, pattern=r"^\d+[bkmg]?$")
    security_opt: list[str] = Field(default_factory=list)
    hostname: str | None = None
    gpus: str | int | None = None
    healthcheck: ContainerHealthcheck | None = None
    options: list[str] = Field(default_factory=list)  # extra `docker run` flags, one argv item each
    # template/copy tasks (by name) whose files this service reads besides those under its bind mounts:
    # their content joins the spec hash, so a change rolls out under the gates.
    restart_on: list[str] = Field(default_factory=list)
    networks: list[ServiceNetwork] = Field(default_factory=list)  # the first at `docker run`, the rest connected
    hooks: Hooks | None = None
    jobs: list[Job] = Field(default_factory=list)
    build: Build | None = None  # then `image` is the repository; the tag is ctx-<digest of the context>
    depends_on: list[Name] = Field(default_factory=list)  # services whose rollouts go first (and must pass)
    network_mode: str | None = Field(None, pattern=r"^(host|none|bridge|container:[A-Za-z0-9_.-]+)$")

    @model_validator(mode="after")
    def _one_network_model(self) -> Service:
        if self.network_mode and self.networks:
            raise ValueError("give networks or network_mode, not both")
        last = self.image.rsplit("/", 1)[-1]
        if self.build is not None and "@" in self.image:
            raise ValueError("with build, image names the repository (pushorch tags it by its context)")
        if self.build is not None and ":" in last and not last.split(":", 1)[1].startswith("ctx-"):
            raise ValueError("with build, image names the repository without a tag (pushorch tags it ctx-<digest>)")
        return self

    health: Health | None = None
    update: UpdatePolicy | None = None
    failover: Failover = Failover()
    consul: ConsulService | None = None

    @property
    def image_version(self) -> str:
        """The version label: `version`, else the image tag, else 'latest'."""
        if self.version:
            return self.version
        last = self.image.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"


# -- host preparation tasks ------------------------------------------------------------------------


class DockerArgs(Model):
    """Ensure the Docker engine: installed from the distribution (or verified present), started."""

    state: Literal["present"] = "present"
    method: Literal["auto", "distro", "none"] = "auto"
    packages: list[str] | None = None
    start: bool = True


class FileAttrs(Model):
    mode: Mode | None = None
    owner: str | None = None
    group: str | None = None


class TemplateArgs(FileAttrs):
    src: str
    dest: AbsPath
    secret: bool = False


class CopyArgs(FileAttrs):
    src: str | None = None
    content: str | SecretStr | None = None
    dest: AbsPath
    secret: bool = False

    @model_validator(mode="after")
    def _src_or_content(self) -> CopyArgs:
        if (self.src is None) == (self.content is None):
            raise ValueError("give exactly one of src and content")
        return self


class FileArgs(FileAttrs):
    path: AbsPath
    state: Literal["file", "directory", "touch", "absent"] = "file"


class CommandArgs(Model):
    cmd: str | list[str]
    creates: AbsPath | None = None
    removes: AbsPath | None = None
    chdir: AbsPath | None = None


def _command_shorthand(value: Any) -> Any:
    return {"cmd": value} if isinstance(value, (str, list)) else value


Command = Annotated[CommandArgs, BeforeValidator(_command_shorthand)]
MODULES = ("docker", "template", "copy", "file", "command", "shell")


class Task(Model):
    """An Ansible-shaped task: a name, exactly one module, and notify/become/when."""

    name: str | None = None
    docker: DockerArgs | None = None
    template: TemplateArgs | None = None
    copy_: CopyArgs | None = Field(None, alias="copy")
    file: FileArgs | None = None
    command: Command | None = None
    shell: Command | None = None
    notify: list[str] = Field(default_factory=list)
    become: bool | None = None
    when: str | bool | None = None
    tags: list[str] = Field(default_factory=list)  # --tags / --skip-tags select tasks by these

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            if isinstance(value.get("notify"), str):
                value["notify"] = [value["notify"]]
            if isinstance(value.get("tags"), str):  # Ansible: "a,b" or "a"
                value["tags"] = [t.strip() for t in value["tags"].split(",") if t.strip()]
            if value.get("docker", "absent") is None:
                value["docker"] = {}  # `- docker:` alone means "ensure Docker"
        return value

    @model_validator(mode="after")
    def _one_module(self) -> Task:
        given = [m for m in MODULES if self.module_args(m) is not None]
        if len(given) != 1:
            raise ValueError(f"a task needs exactly one of {', '.join(MODULES)} (got {given or 'none'})")
        return self

    def module_args(self, module: str) -> Any:
        return getattr(self, "copy_" if module == "copy" else module)

    @property
    def module(self) -> str:
        return next(m for m in MODULES if self.module_args(m) is not None)


# -- plays -----------------------------------------------------------------------------------------


class Play(Model):
    """One play: which hosts, their variables, preparation tasks, handlers and services."""

    name: str | None = None
    hosts: str | list[str]
    vars: dict[str, Any] = Field(default_factory=dict)
    vars_files: list[str] = Field(default_factory=list)
    become: bool = False
    gather_facts: bool = True
    tasks: list[Task] = Field(default_factory=list)
    handlers: list[Task] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    serial: CountOrPercent | None = None
    max_fail_percentage: float | None = Field(None, ge=0, le=100)
    any_errors_fatal: bool = False
    update: UpdatePolicy | None = None
    tags: list[str] = Field(default_factory=list)  # inherited by its tasks; select its services
    networks: list[Network] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _tag_string(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("tags"), str):
            value = {**value, "tags": [t.strip() for t in value["tags"].split(",") if t.strip()]}
        return value

    @model_validator(mode="after")
    def _names_resolve(self) -> Play:
        handler_names = [h.name for h in self.handlers]
        if None in handler_names:
            raise ValueError("every handler needs a name (tasks notify it by name)")
        writers = {t.name for t in self.tasks if t.template is not None or t.copy_ is not None}
        for service in self.services:
            for wanted in service.restart_on:
                if wanted not in writers:
                    raise ValueError(
                        f"service {service.name} restart_on {wanted!r}: no template or copy task is named so"
                    )
        for task in self.tasks:
            for wanted in task.notify:
                if wanted not in handler_names:
                    raise ValueError(f"task {task.name or task.module!r} notifies {wanted!r}, which is no handler")
        names = [s.name for s in self.services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"service names must be unique: {', '.join(duplicates)}")
        return self

    def policy_for(self, service: Service) -> UpdatePolicy:
        """A service's update policy: its own, else the play's, else the defaults."""
        return service.update or self.update or UpdatePolicy()


# -- the loaded whole: what `load` hands to observe/plan ------------------------------------------


@dataclass(frozen=True, slots=True)
class HostSpec:
    """Everything one host must become: its variables and each play rendered for it."""

    name: str
    vars: Mapping[str, Any]
    plays: tuple[Play, ...]
    # Rendered content of template/copy tasks: (play index, task index) -> text.
    files: Mapping[tuple[int, int], str]
    # The playbook file (basename) each play came from, parallel to `plays`.
    sources: tuple[str, ...] = ()
    # Services whose `placement.hosts` pattern leaves this host out.
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Spec:
    """The desired state of every targeted host, in inventory order."""

    playbooks: tuple[str, ...]
    hosts: Mapping[str, HostSpec]
    # Hosts the plays target that --limit left out: nothing is done to them, but placement counts
    # the instances they run (a limit restricts what changes, never what placement knows).
    outside: Mapping[str, HostSpec] = field(default_factory=dict)


def schema_keys(model: type[BaseModel] = Play, seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every key the playbook schema accepts, at any depth (for 'did you mean' and the docs test)."""
    seen = seen if seen is not None else set()
    seen.add(model)
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(info.alias or name)
        for sub in _models_in(info.annotation):
            if sub not in seen:
                keys |= schema_keys(sub, seen)
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]

"""A service's container spec: ports, volumes, health, update, failover, Consul, placement, networks, jobs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from pushorch.secret import Secret
from pushorch.spec.ingress import ServiceIngress
from pushorch.spec.values import (
    AbsPath,
    Amount,
    CountOrPercent,
    Duration,
    EnvValue,
    Model,
    Name,
    Port,
    SecretStr,
    _env,
    _image,
)

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
    target: str | None = None  # the multi-stage Dockerfile's stage to build (`docker build --target`)


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
    ingress: ServiceIngress | None = None  # reached through the run's ingress hosts (spec/ingress.py)

    @model_validator(mode="after")
    def _ingress_port(self) -> Service:
        if self.ingress is None:
            return self
        # Published on a host port, fixed or Docker's choice (start-first): the ingress reaches it there.
        published = {p.container for p in self.ports if p.protocol == "tcp"}
        port = self.ingress.port
        if port is None and len(published) != 1:
            raise ValueError("ingress: give its port (the container port the proxy sends requests to)")
        if port is not None and port not in published:
            raise ValueError(f"ingress: port {port} is not published (ports: - HOST:{port}, or - {port})")
        return self

    @property
    def image_version(self) -> str:
        """The version label: `version`, else the image tag, else 'latest'."""
        if self.version:
            return self.version
        last = self.image.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"

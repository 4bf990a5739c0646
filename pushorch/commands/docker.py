"""Builders for docker commands, and the spec hash that names a container's configuration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pushorch.commands.marks import UNGATED_DIR
from pushorch.commands.shell import Argv, join
from pushorch.secret import Secret
from pushorch.spec import Service

LABEL_PREFIX = "pushorch."
ENV_DIR = "/etc/pushorch/env"


def _canonical_env(service: Service) -> dict[str, str]:
    # Secrets enter the hash only as their own hash: a changed secret replaces the container,
    # and the label never carries the value.
    return {
        k: ("sha256:" + hashlib.sha256(v.reveal().encode()).hexdigest() if isinstance(v, Secret) else v)
        for k, v in sorted(service.env.items())
    }


def _fields(service: Service, config: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything that shapes the container: the one list both the hash and the shape label read.

    A field added here changes every container's hash (and so replaces every container once):
    add new fields only when set (`if value: fields[key] = ...`) so existing containers keep theirs.
    """
    return {
        "image": service.image,
        "env": _canonical_env(service),
        "ports": [p.model_dump() for p in service.ports],
        "volumes": [v.model_dump() for v in service.volumes],
        "command": service.command,
        "entrypoint": service.entrypoint,
        "user": service.user,
        "restart": service.restart,
        "labels": service.labels,
        "log": service.log.model_dump() if service.log else None,
        "resources": service.resources.model_dump() if service.resources else None,
        "stop_timeout": service.stop_timeout,
        # The run options, each only when set: a container made before they existed keeps its hash.
        **{key: value for key, value in _run_options(service).items() if value},
        # The files it reads (path -> digest of their content), when it has any.
        **({"config": dict(config)} if config else {}),
    }


def _run_options(service: Service) -> dict[str, Any]:
    return {
        "cap_add": service.cap_add,
        "cap_drop": service.cap_drop,
        "devices": service.devices,
        "ulimits": {k: v.model_dump() for k, v in service.ulimits.items()},
        "extra_hosts": service.extra_hosts,
        "sysctls": {k: str(v) for k, v in service.sysctls.items()},
        "tmpfs": service.tmpfs,
        "read_only": service.read_only,
        "init": service.init,
        "shm_size": service.shm_size,
        "security_opt": service.security_opt,
        "hostname": service.hostname,
        "gpus": service.gpus,
        "healthcheck": service.healthcheck.model_dump() if service.healthcheck else None,
        "options": service.options,
        "networks": [n.model_dump() for n in service.networks],
        "network_mode": service.network_mode,
    }


def _run_option_flags(service: Service) -> list[str]:
    """The run options as `docker run` flags (every value its own argv item)."""
    argv: list[str] = []
    argv += [x for cap in service.cap_add for x in ("--cap-add", cap)]
    argv += [x for cap in service.cap_drop for x in ("--cap-drop", cap)]
    argv += [x for device in service.devices for x in ("--device", device)]
    argv += [x for k, v in sorted(service.ulimits.items()) for x in ("--ulimit", f"{k}={v.soft}:{v.hard}")]
    argv += [x for host, ip in sorted(service.extra_hosts.items()) for x in ("--add-host", f"{host}:{ip}")]
    argv += [x for k, v in sorted(service.sysctls.items()) for x in ("--sysctl", f"{k}={v}")]
    argv += [x for mount in service.tmpfs for x in ("--tmpfs", mount)]
    argv += ["--read-only"] if service.read_only else []
    argv += ["--init"] if service.init else []
    argv += ["--shm-size", service.shm_size] if service.shm_size else []
    argv += [x for opt in service.security_opt for x in ("--security-opt", opt)]
    argv += ["--hostname", service.hostname] if service.hostname else []
    argv += ["--gpus", str(service.gpus)] if service.gpus is not None else []
    argv += ["--network", service.network_mode] if service.network_mode else []
    if service.networks:  # the first network at run; the others are connected right after (connects())
        first = service.networks[0]
        argv += ["--network", first.name, *[x for alias in first.aliases for x in ("--network-alias", alias)]]
    check = service.healthcheck
    if check is not None and check.disable:
        argv.append("--no-healthcheck")
    elif check is not None:
        if check.test is not None:
            test = check.test if isinstance(check.test, str) else _health_test(check.test)
            argv += ["--health-cmd", test]
        for flag, seconds in (
            ("--health-interval", check.interval),
            ("--health-timeout", check.timeout),
            ("--health-start-period", check.start_period),
        ):
            argv += [flag, f"{seconds:g}s"] if seconds is not None else []
        argv += ["--health-retries", str(check.retries)] if check.retries is not None else []
    return argv + list(service.options)


def _health_test(test: list[str]) -> str:
    """Compose's list form: ["CMD", "curl", "-f", "x"] / ["CMD-SHELL", "curl -f x"] -> the command line."""
    from pushorch.commands.shell import join

    if test and test[0] == "CMD-SHELL":
        return " ".join(test[1:])
    return join(tuple(test[1:] if test and test[0] == "CMD" else test))


def spec_hash(service: Service, config: Mapping[str, str] | None = None) -> str:
    """A digest of everything that shapes the container (`config`: its files' digests); equal hash =
    nothing to do."""
    fields = _fields(service, config)
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shape(service: Service, config: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The same fields, for the label that explains a replacement field by field (`image changed (a -> b)`,
    `env changed (NAME)`, `config changed (PATH)`); secret values enter only as their hash."""
    return {
        key: value if key in ("image", "env", "config") else json.dumps(value, sort_keys=True, default=str)
        for key, value in _fields(service, config).items()
    }


def container_name(service: str, digest: str) -> str:
    return f"{service}-{digest[:8]}"


def env_file(service: Service, name: str) -> tuple[str, str] | None:
    """Secret env values go to a 0600 file on the host, never onto a command line."""
    secrets = {k: v.reveal() for k, v in service.env.items() if isinstance(v, Secret)}
    if not secrets:
        return None
    for key, value in secrets.items():
        if "\n" in value:
            raise ValueError(
                f"service {service.name}: secret env {key} has a newline (docker env files cannot hold it)"
            )
    return f"{ENV_DIR}/{name}.env", "".join(f"{k}={v}\n" for k, v in sorted(secrets.items()))


def run(service: Service, name: str, labels: dict[str, str], env_path: str | None, dynamic_ports: bool = False) -> Argv:
    """`docker run -d` for a service: every user string is one argv element (quoted once, later).

    dynamic_ports (start-first updates): Docker picks the host ports, so old and new run side by side.
    """
    argv: list[str] = ["docker", "run", "-d", "--name", name, "--restart", service.restart]
    for key, value in sorted({**service.labels, **labels}.items()):
        argv += ["--label", f"{key}={value}"]
    for port in service.ports:
        published = f"{port.container}/{port.protocol}"
        if port.host is not None and not dynamic_ports:
            published = f"{port.host}:{published}"
        if port.bind:
            fixed = port.host is not None and not dynamic_ports
            published = f"{port.bind}:{published}" if fixed else f"{port.bind}::{published}"
        argv += ["-p", published]
    for variable, env_value in sorted(service.env.items()):
        if not isinstance(env_value, Secret):
            argv += ["-e", f"{variable}={env_value}"]
    if env_path:
        argv += ["--env-file", env_path]
    for volume in service.volumes:
        argv += ["-v", f"{volume.source}:{volume.target}" + (":ro" if volume.read_only else "")]
    if service.user:
        argv += ["--user", service.user]
    if service.resources and service.resources.memory:
        argv += ["--memory", service.resources.memory]
    if service.resources and service.resources.cpus:
        argv += ["--cpus", f"{service.resources.cpus:g}"]
    if service.log and service.log.driver:
        argv += ["--log-driver", service.log.driver]
    for option, setting in sorted((service.log.options if service.log else {}).items()):
        argv += ["--log-opt", f"{option}={setting}"]
    argv += ["--stop-timeout", str(int(service.stop_timeout))]
    argv += _run_option_flags(service)
    entrypoint = service.entrypoint
    if isinstance(entrypoint, list):
        argv += ["--entrypoint", entrypoint[0]] if entrypoint else ["--entrypoint", ""]
    elif entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    argv.append(service.image)
    if isinstance(entrypoint, list):
        argv += entrypoint[1:]
    if isinstance(service.command, list):
        argv += service.command
    elif service.command:
        argv += ["sh", "-c", service.command]
    return tuple(argv)


def pull(image: str) -> Argv:
    return ("docker", "pull", "-q", image)


def login(server: str, username: str) -> Argv:
    """`docker login` reading the password from stdin (never on the command line)."""
    return ("docker", "login", "--username", username, "--password-stdin", server)


def start(name: str) -> Argv:
    return ("docker", "start", name)


def start_again(name: str) -> Argv:
    """`docker start` of a stopped instance (drift), tried a second time a second later: a dockerd that
    has just started is still restoring its containers and may refuse one it is starting itself (seen
    by the soak after dockerd was killed and restarted)."""
    return ("sh", "-c", 'docker start "$1" >/dev/null 2>&1 || { sleep 1; docker start "$1"; }', "pushorch-start", name)


def restart(name: str, timeout: int = 10) -> Argv:
    return ("docker", "restart", "-t", str(timeout), name)


def stop(name: str, timeout: int = 10, *more: str) -> Argv:
    return ("docker", "stop", "-t", str(timeout), name, *more)


def remove(name: str) -> Argv:
    return ("docker", "rm", "-f", name)


def load() -> Argv:
    return ("sh", "-c", "gunzip | docker load -q")


_ADDRESSES = "{{json .NetworkSettings.Ports}}\n{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"


def state(name: str) -> Argv:
    """First line: status, restart count and, with a HEALTHCHECK, health (`running 0 healthy`); then
    what `addresses` says, so a gate's first look at a started container is one inspect, not two."""
    fmt = "{{.State.Status}} {{.RestartCount}} {{if .State.Health}}{{.State.Health.Status}}{{end}}\n" + _ADDRESSES
    return ("docker", "inspect", "--format", fmt, name)


def addresses(name: str) -> Argv:
    """Published ports as JSON, then the container's IP addresses: where a health probe connects."""
    return ("docker", "inspect", "--format", _ADDRESSES, name)


def logs(name: str, lines: int = 10) -> Argv:
    return ("docker", "logs", "--tail", str(lines), name)


def exec_(name: str, argv: tuple[str, ...]) -> Argv:
    return ("docker", "exec", name, *argv)


def job_digest(service: Service) -> str:
    """What makes the service's jobs run again: its image and the jobs' commands."""
    jobs = [[j.name, j.command] for j in service.jobs]
    return hashlib.sha256(json.dumps([service.image, jobs], sort_keys=True).encode()).hexdigest()[:16]


def job_run(service: Service, command: list[str] | str, name: str, env_path: str | None) -> Argv:
    """`docker run --rm` of a job: the service's image, env (secrets by env file), volumes, user and
    first network; attached, so its output streams and its exit status is the job's."""
    argv = ["docker", "run", "--rm", "--name", name, "--label", f"pushorch.job={service.name}"]
    argv += [x for k, v in sorted(service.env.items()) if not isinstance(v, Secret) for x in ("-e", f"{k}={v}")]
    argv += ["--env-file", env_path] if env_path else []
    argv += [x for v in service.volumes for x in ("-v", f"{v.source}:{v.target}" + (":ro" if v.read_only else ""))]
    argv += ["--user", service.user] if service.user else []
    argv += ["--network", service.network_mode] if service.network_mode else []
    argv += ["--network", service.networks[0].name] if service.networks else []
    argv += [x for host, ip in sorted(service.extra_hosts.items()) for x in ("--add-host", f"{host}:{ip}")]
    argv.append(service.image)
    argv += command if isinstance(command, list) else ["sh", "-c", command]
    return tuple(argv)


# A job past its deadline: killing the `docker run` that attached to it leaves the container running
# its command, so the container is removed too. Without `timeout` on the host the job runs unbounded
# there (the controller still removes it once the job is reported failed).
_BOUNDED_JOB = (
    'n=$0 t=$1; shift; if command -v timeout >/dev/null 2>&1; then timeout -s KILL "$t" "$@"; else "$@"; fi; s=$?; '
    'if [ "$s" -eq 124 ] || [ "$s" -eq 137 ]; then docker rm -f "$n" >/dev/null 2>&1; fi; exit "$s"'
)


def bounded_job(run_argv: Argv, name: str, seconds: float) -> Argv:
    """A job's `docker run` (container `name`), stopped and removed on the host after `seconds`;
    exits 137 then (shell.DEADLINE_STATUSES)."""
    return ("sh", "-c", _BOUNDED_JOB, name, f"{max(1, round(seconds))}", *run_argv)


# A container started by a replacement and not yet through its gate has a file here; the gate passing
# removes it. A run stopped in between (SIGKILL, a second Ctrl-C, a lost connection) leaves the file,
# and the next run's plan gates that container again instead of taking it for serving. Best effort:
# a login that cannot write here (docker group, no become) gets no mark.
_MARK = f'mkdir -p {UNGATED_DIR} 2>/dev/null && : > {UNGATED_DIR}/"$0" 2>/dev/null;'


def run_replacing(name: str, run_argv: Argv, connect: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Argv:
    """`docker run` marked ungated, after removing a container left under the same name (an interrupted
    run's); then the service's other networks connected (`connect`: (network, aliases) each)."""
    if not connect:
        return ("sh", "-c", f'{_MARK} docker rm -f "$0" >/dev/null 2>&1; exec "$@"', name, *run_argv)
    joins = " && ".join(
        join(("docker", "network", "connect", *[x for a in aliases for x in ("--alias", a)], network, name))
        for network, aliases in connect
    )
    return ("sh", "-c", f'{_MARK} docker rm -f "$0" >/dev/null 2>&1; "$@" && {joins}', name, *run_argv)


def start_marked(name: str) -> Argv:
    """`docker start` of a kept container that becomes the new instance, marked ungated first (as
    run_replacing marks a fresh one): a run stopped before its gate passed leaves it to be gated again."""
    return ("sh", "-c", f'{_MARK} exec docker start "$0"', name)


def connects(service: Service) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The networks after the first, as run_replacing connects them."""
    return tuple((n.name, tuple(n.aliases)) for n in service.networks[1:])


def network_create(
    name: str, driver: str, internal: bool, labels: dict[str, str], subnet: str | None, gateway: str | None
) -> Argv:
    argv = ["docker", "network", "create", "--driver", driver]
    argv += ["--internal"] if internal else []
    argv += [x for k, v in sorted(labels.items()) for x in ("--label", f"{k}={v}")]
    argv += ["--subnet", subnet] if subnet else []
    argv += ["--gateway", gateway] if gateway else []
    return (*argv, name)


def network_remove(name: str) -> Argv:
    return ("docker", "network", "rm", name)


def repository(image: str) -> str:
    """`reg:5000/app/web:1.2` -> `reg:5000/app/web` (a digest or tag stripped; a registry port kept)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]

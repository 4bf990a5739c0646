"""The observe probe: one POSIX sh script per host per pass, read-only, sections the parser reads back.

Sections are delimited by `==pushorch:NAME==` lines so one section's failure never hides another.
The paths and image references it asks about come from the spec and are quoted by shell.quote.
"""

from __future__ import annotations

from collections.abc import Sequence

from pushorch.commands import haproxy, marks
from pushorch.commands.shell import Argv, quote, sh
from pushorch.consul import commands as consul_cmd
from pushorch.consul.settings import agent_port
from pushorch.spec import HostSpec

MARK = "==pushorch:{}=="


def probe_paths(host: HostSpec) -> list[str]:
    """Every path the plan for this host depends on (the probe reports each)."""
    paths: list[str] = []
    for play in host.plays:
        for task in [*play.tasks, *play.handlers]:
            args = task.module_args(task.module)
            for attr in ("dest", "path", "creates", "removes"):
                value = getattr(args, attr, None)
                if value:
                    paths.append(value)
        for service in play.services:
            if service.consul and service.consul.enabled:
                paths.append(consul_cmd.definition_path(service.consul, service.name))
        if play.ingress is not None:
            paths += [haproxy.BINARY, haproxy.SOCAT]
    return list(dict.fromkeys(paths))


def needs_docker(host: HostSpec) -> bool:
    """Whether the plan for this host reads Docker's state (services or a docker task)."""
    return any(p.services or any(t.docker is not None for t in p.tasks) for p in host.plays)


def probe_images(host: HostSpec) -> list[str]:
    return list(dict.fromkeys(s.image for play in host.plays for s in play.services))


def for_host(host: HostSpec) -> Argv:
    """The probe for what this host's plan reads."""
    port = agent_port(host.vars)
    uses_networks = any(p.networks or any(s.networks for s in p.services) for p in host.plays)
    ingress = any(p.ingress for p in host.plays)
    return probe(
        probe_paths(host),
        probe_images(host),
        docker=needs_docker(host),
        consul_port=port,
        networks=uses_networks,
        ingress=ingress,
    )


# A dockerd younger than this many seconds (a host just rebooted, dockerd just restarted) is still
# starting the containers its restart policies bring back: observed now, one of them looks stopped, and
# the run starts or replaces it while dockerd starts it too (the soak, seed 1 round 22). The probe waits
# until dockerd is that old. Its age: /proc/PID/stat's start time (field 22, in clock ticks of 1/100 s)
# against /proc/uptime; builtins only, one subshell, and only where dockerd's pid file is.
DOCKERD_SETTLE = (
    'young=10; if read -r p </var/run/docker.pid 2>/dev/null && read -r st </proc/"$p"/stat 2>/dev/null; then'
    " (set -- ${st#*) }; read -r u _ </proc/uptime; a=$(( ${u%.*} - ${20} / 100 ));"
    ' if [ "$a" -ge 0 ] && [ "$a" -lt "$young" ]; then'
    " sleep $(( young - a )); echo DOCKERD_WAITED=$(( young - a )); fi);"
    " fi"
)


def probe(
    paths: Sequence[str],
    images: Sequence[str],
    docker: bool = True,
    consul_port: int = 8500,
    networks: bool = False,
    ingress: bool = False,
) -> Argv:
    """The probe argv: OS, systemd, Docker, managed containers, the spec's images, files, Consul.

    docker=False (a spec with no services and no docker task) leaves the OS, Docker and Consul
    queries out: the plan reads them only to install/start Docker and run services, and they cost
    the host a fork and an exec (the OS) to ~100 ms of CPU (Docker) on every run.
    """
    path_words = " ".join(quote(p) for p in paths)
    if ingress:  # every fragment of the proxy's configuration, this run's services' and the others'
        path_words = f"{path_words} {haproxy.FRAGMENTS}/*".strip()
    image_words = " ".join(quote(i) for i in images)
    # Few processes on purpose: on a large fleet each fork on the host is paid once per host.
    system = [
        f"echo '{MARK.format('os')}'",
        '(. /etc/os-release 2>/dev/null; echo "ID=$ID"; echo "VERSION_ID=$VERSION_ID")',
        "for pm in apt-get dnf yum apk zypper; do command -v $pm >/dev/null 2>&1 && { echo PM=$pm; break; }; done",
        "[ -d /run/systemd/system ] && echo SYSTEMD=1",
        "command -v consul >/dev/null 2>&1 && echo CONSUL_BINARY=1",
        # A Consul agent listening on its port (8500 = 0x2134) on any IPv4/IPv6 address, without curl.
        f"grep -qsE ' [0-9A-F]+:{consul_port:04X} [0-9A-F:]+ 0A ' /proc/net/tcp /proc/net/tcp6 && echo CONSUL_AGENT=1",
    ]
    if ingress:  # the proxy's master process alive (its socket file alone outlives a killed one)
        system.append(f'p=$(cat {haproxy.PIDFILE} 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo INGRESS_RUNNING=1')
    containers = [
        f"echo '{MARK.format('docker')}'",
        DOCKERD_SETTLE,
        # `docker ps` answering is the daemon running (a `docker version` more cost each host ~30 ms).
        'ids=""; if command -v docker >/dev/null 2>&1; then echo INSTALLED=1;'
        " ids=$(docker ps -aq --no-trunc --filter label=pushorch.service 2>/dev/null) && echo RUNNING=1; fi",
        f"echo '{MARK.format('containers')}'",
        '[ -n "$ids" ] && docker inspect $ids 2>/dev/null',
        *marks.probe_lines(MARK),
        f"echo '{MARK.format('networks')}'",
        # Only for hosts whose plays use networks: each docker call costs the host ~30 ms of CPU.
        "docker network ls --format '{{.Name}}|{{.Label \"pushorch.playbook\"}}' 2>/dev/null" if networks else ":",
        f"echo '{MARK.format('images')}'",
        f"for i in {image_words}; do printf '%s %s\\n'"
        ' "$(docker image inspect --format \'{{.Id}}\' "$i" 2>/dev/null || echo -)" "$i"; done'
        if images
        else ":",
    ]
    files = [
        # One stat and one sha256sum for every path; a missing path prints nothing (= missing).
        f"echo '{MARK.format('files')}'",
        f"stat -c '%F|%a|%U|%G|%n' -- {path_words} 2>/dev/null" if path_words else ":",
        f"echo '{MARK.format('sha256')}'",
        f"sha256sum -- {path_words} 2>/dev/null" if path_words else ":",
        f"echo '{MARK.format('end')}'",
    ]
    return sh("\n".join([*(system if docker or ingress else []), *(containers if docker else []), *files]))

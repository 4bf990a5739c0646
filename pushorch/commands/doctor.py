"""`pushorch doctor`'s one command per host and the reading of its answer (pure): who we are and
whether sudo asks, Docker's engine and storage, free space, the host's clock, the TCP ports held on
the host and those pushorch's own containers publish."""

from __future__ import annotations

from dataclasses import dataclass, field

from pushorch.commands.diagnosis import listeners
from pushorch.commands.shell import Argv

_SCRIPT = r"""echo @@id; id -u
echo @@sudo
if [ "$(id -u)" = 0 ]; then echo root
elif command -v sudo >/dev/null 2>&1; then if sudo -n true 2>/dev/null; then echo nopasswd; else echo password; fi
else echo none; fi
D=docker  # through sudo when only sudo reaches the daemon (a login outside the docker group, become)
if ! docker version >/dev/null 2>&1 && [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then D="sudo -n docker"; fi
echo @@docker
if command -v docker >/dev/null 2>&1; then $D version --format '{{.Server.Version}}' 2>&1 | tail -n 1
else echo 'not installed'; fi
echo @@info; $D info --format '{{.Driver}}|{{.DockerRootDir}}' 2>/dev/null | head -n 1
echo @@df
root=$($D info --format '{{.DockerRootDir}}' 2>/dev/null)
for d in "${root:-/var/lib/docker}" /var/lib/pushorch; do
  p=$d; while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  echo "$d $(df -Pk "$p" | tail -n 1 | awk '{print $4}')"
done
echo @@clock; date +%s.%N
echo @@listen; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo @@proxies; ps -eo args 2>/dev/null | sed -n 's/.*docker-proxy .*-host-port \([0-9]*\).*/\1/p'
echo @@published
$D ps --filter label=pushorch.service --format '{{.Label "pushorch.service"}} {{.Ports}}' 2>/dev/null
exit 0
"""


def script() -> Argv:
    return ("sh", "-c", _SCRIPT)


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What one host said."""

    uid: str = ""
    sudo: str = ""  # root | nopasswd | password | none
    docker: str = ""  # the engine's version, or why there is none
    driver: str = ""
    free_kib: dict[str, int] = field(default_factory=dict)  # directory -> KiB free where it is (or would be)
    clock: float | None = None
    listening: dict[int, set[str]] = field(default_factory=dict)
    published: dict[int, set[str]] = field(default_factory=dict)  # host port -> services publishing it
    proxied: set[int] = field(default_factory=set)  # host ports a docker-proxy process holds


def parse(out: str) -> HostFacts:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            sections[current] = []
        elif current:
            sections[current].append(line)

    def first(name: str) -> str:
        return next((line.strip() for line in sections.get(name, []) if line.strip()), "")

    free = {}
    for line in sections.get("df", []):
        directory, _, kib = line.rpartition(" ")
        if kib.isdigit():
            free[directory] = int(kib)
    seconds, _, fraction = first("clock").partition(".")
    return HostFacts(
        uid=first("id"),
        sudo=first("sudo"),
        docker=first("docker"),
        driver=first("info").partition("|")[0],
        free_kib=free,
        clock=float(f"{seconds}.{fraction if fraction.isdigit() else 0}") if seconds.isdigit() else None,
        listening=listeners("\n".join(sections.get("listen", []))),
        published=_published(sections.get("published", [])),
        proxied={int(p) for p in sections.get("proxies", []) if p.strip().isdigit()},
    )


def _published(lines: list[str]) -> dict[int, set[str]]:
    """`SERVICE 0.0.0.0:8080->80/tcp, :::8080->80/tcp` -> {8080: {SERVICE}}."""
    found: dict[int, set[str]] = {}
    for line in lines:
        service, _, ports = line.partition(" ")
        for mapping in ports.split(","):
            host_side = mapping.strip().partition("->")[0]
            port = host_side.rpartition(":")[2]
            if "->" in mapping and port.isdigit():
                found.setdefault(int(port), set()).add(service)
    return found

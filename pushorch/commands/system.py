"""Builders for host preparation: installing and starting Docker, paths, ownership."""

from __future__ import annotations

from pushorch.commands.shell import Argv, join, quote, sh

# Distribution packages by OS id; `packages:` in the docker task overrides them.
DOCKER_PACKAGES = {
    "debian": ("docker.io",),
    "ubuntu": ("docker.io",),
    "fedora": ("moby-engine",),
    "centos": ("docker",),
    "rhel": ("docker",),
    "rocky": ("docker",),
    "almalinux": ("docker",),
    "alpine": ("docker",),
}


def install_packages(package_manager: str, packages: tuple[str, ...]) -> Argv:
    words = join(packages)
    if package_manager == "apt-get":
        return sh(
            "export DEBIAN_FRONTEND=noninteractive && apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {words}"
        )
    if package_manager in ("dnf", "yum"):
        return (package_manager, "install", "-y", *packages)
    if package_manager == "apk":
        return ("apk", "add", *packages)
    if package_manager == "zypper":
        return ("zypper", "--non-interactive", "install", *packages)
    raise ValueError(f"no way to install packages with {package_manager or 'an unknown package manager'}")


def start_docker(systemd: bool) -> Argv:
    """Start (and enable) the daemon; without systemd start dockerd directly and wait for it.

    Debian's `service docker start` fails where the hard open-files limit is fixed (its ulimit -n
    is refused), so without systemd we run dockerd ourselves, and stop waiting as soon as it exits.
    """
    fail = '{ echo "$1" >&2; tail -n 5 /var/log/dockerd.log >&2; exit 1; }'
    if systemd:
        start, alive = "systemctl enable --now docker || exit 1", "true"
    else:
        start = "nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null & pid=$!"
        alive = 'kill -0 "$pid" 2>/dev/null'
    return sh(
        f"docker info >/dev/null 2>&1 && exit 0; pid=; {start}; i=0\n"
        "until docker info >/dev/null 2>&1; do\n"
        f"  {alive} || {fail.replace('$1', 'dockerd exited')}\n"
        f"  i=$((i+1)); [ $i -gt 120 ] && {fail.replace('$1', 'dockerd did not answer within 60s')}\n"
        "  sleep 0.5\n"
        "done"
    )


def ensure_path(path: str, state: str, mode: str | None, owner: str | None, group: str | None) -> Argv:
    steps = []
    if state == "directory":
        steps.append(f"mkdir -p {quote(path)}")
    elif state == "touch":
        steps.append(f"touch {quote(path)}")
    elif state == "absent":
        return ("rm", "-rf", "--", path)
    steps += attributes(path, mode, owner, group)
    return sh(" && ".join(steps) or ":")


def attributes(path: str, mode: str | None, owner: str | None, group: str | None) -> list[str]:
    steps = []
    if mode:
        steps.append(f"chmod {quote(mode)} {quote(path)}")
    if owner or group:
        steps.append(f"chown {quote((owner or '') + (':' + group if group else ''))} {quote(path)}")
    return steps


def parent_dir(path: str, mode: int = 0o755) -> Argv:
    return ("mkdir", "-p", "-m", f"{mode:o}", "--", path.rsplit("/", 1)[0] or "/")


def remove_file(*paths: str) -> Argv:
    return ("rm", "-f", "--", *paths)

"""The files a service reads (pure): template/copy tasks whose destination lies under one of its bind
mounts, or that its `restart_on` names. Their content joins its spec hash, so a change to them rolls
out host by host under the service's gates, and its rollout writes them (never the host phase)."""

from __future__ import annotations

from pushorch.actions import WriteFile
from pushorch.planner.labels import sha256
from pushorch.planner.tasks import file_of
from pushorch.spec import HostSpec, Service


def _under(path: str, directory: str) -> bool:
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory + "/")


def config_files(host: HostSpec, service: Service) -> tuple[WriteFile, ...]:
    """The service's files on this host, as the tasks that write them would (first writer of a path wins)."""
    mounts = [v.source for v in service.volumes if v.source.startswith("/")]
    found: dict[str, WriteFile] = {}
    for play_index, play in enumerate(host.plays):
        for task_index, task in enumerate(play.tasks):
            args = task.template or task.copy_
            if args is None or args.dest in found:
                continue
            if task.name in service.restart_on or any(_under(args.dest, m) for m in mounts):
                become = task.become if task.become is not None else (play.become or None)
                found[args.dest] = file_of(host, play_index, task_index, become, f"config of {service.name}")
    return tuple(found.values())


def digests(files: tuple[WriteFile, ...]) -> dict[str, str]:
    """path -> a short digest of the content: what the spec hash and the shape label hold."""
    return {f.path: sha256(f.content)[:16] for f in files}

"""Plan a host's engine and tasks (pure): InstallDocker/StartDocker, then each play's tasks and handlers."""

from __future__ import annotations

import dataclasses
import shlex

from pushorch.actions import Action, EnsurePath, InstallDocker, PathState, RunCommand, StartDocker, WriteFile
from pushorch.commands.system import DOCKER_PACKAGES
from pushorch.observed import ObservedFile, ObservedHost
from pushorch.planner.labels import sha256
from pushorch.secret import Secret
from pushorch.spec import CopyArgs, HostSpec, Play, Task, TemplateArgs


def docker_engine(host: HostSpec, seen: ObservedHost, needed: bool) -> list[Action]:
    """Docker installed and running when a task asks for it or the host runs services (`needed`)."""
    tasks = [t for p in host.plays for t in p.tasks if t.docker is not None]
    if not tasks and not needed:
        return []
    args = tasks[0].docker if tasks else None
    if not seen.docker_installed:
        if args is not None and args.method == "none":
            return []  # only verify: the executor's probe reports it missing
        packages = tuple(args.packages) if args and args.packages else DOCKER_PACKAGES.get(seen.os_id, ("docker.io",))
        reason = "docker is not installed" + ("" if tasks else " (services need it)")
        return [
            InstallDocker(
                host.name, reason, package_manager=seen.package_manager, packages=packages, systemd=seen.systemd
            ),
            StartDocker(host.name, "just installed", systemd=seen.systemd),
        ]
    if not seen.docker_running and (args is None or args.start):
        return [StartDocker(host.name, "the docker daemon does not answer", systemd=seen.systemd)]
    return []


def observed_file(seen: ObservedHost, path: str) -> ObservedFile:
    return seen.files.get(path) or ObservedFile(path, exists=False)


def _attrs_differ(current: ObservedFile, mode: str | None, owner: str | None, group: str | None) -> list[str]:
    changes = []
    if mode and current.mode != mode:
        changes.append(f"mode {current.mode} -> {mode}")
    if owner and current.owner != owner:
        changes.append(f"owner {current.owner} -> {owner}")
    if group and current.group != group:
        changes.append(f"group {current.group} -> {group}")
    return changes


def play_tasks(
    host: HostSpec, seen: ObservedHost, play_index: int, play: Play, rolled: frozenset[str] = frozenset()
) -> list[Action]:
    """A play's tasks that would change something, then the handlers they notify (once each).
    `rolled`: files a service's rollout writes itself (host by host, under its gates): left out here,
    and so are the handlers they would notify."""
    out: list[Action] = []
    notified: list[str] = []
    for task_index, task in enumerate(play.tasks):
        become = task.become if task.become is not None else (play.become or None)
        steps = [
            s
            for s in _task(host, seen, play_index, task_index, task, become)
            if not (isinstance(s, WriteFile) and s.path in rolled)
        ]
        if steps:
            notified.extend(task.notify)
        out.extend(steps)
    for handler in play.handlers:
        if handler.name in notified:
            become = handler.become if handler.become is not None else (play.become or None)
            reason = "notified by " + ", ".join(t.name or t.module for t in play.tasks if handler.name in t.notify)
            out.extend(_command(host, seen, handler, become, reason, check_paths=False))
    return out


def _task(
    host: HostSpec, seen: ObservedHost, play_index: int, task_index: int, task: Task, become: bool | None
) -> list[Action]:
    if task.template is not None or task.copy_ is not None:
        return _write(host, seen, play_index, task_index, task, become)
    if task.file is not None:
        return _path(host, seen, task, become)
    if task.command is not None or task.shell is not None:
        return _command(host, seen, task, become, "command", check_paths=True)
    return []


def file_of(host: HostSpec, play_index: int, task_index: int, become: bool | None, reason: str = "") -> WriteFile:
    """The file a template or copy task writes: path, rendered content, mode, owner, group."""
    task = host.plays[play_index].tasks[task_index]
    args: TemplateArgs | CopyArgs
    if task.template is not None:
        args, secret = task.template, task.template.secret
        content = host.files[(play_index, task_index)]
    else:
        assert task.copy_ is not None
        args, inline = task.copy_, task.copy_.content
        secret = task.copy_.secret or isinstance(inline, Secret)
        content = host.files.get((play_index, task_index)) or (
            inline.reveal() if isinstance(inline, Secret) else inline or ""
        )
    mode = args.mode or ("0600" if secret else None)
    return WriteFile(
        host.name,
        reason,
        become,
        path=args.dest,
        content=content,
        mode=mode,
        owner=args.owner,
        group=args.group,
        secret=secret,
        notify=tuple(task.notify),
    )


def _write(
    host: HostSpec, seen: ObservedHost, play_index: int, task_index: int, task: Task, become: bool | None
) -> list[Action]:
    write = file_of(host, play_index, task_index, become)
    current = observed_file(seen, write.path)
    if not current.exists:
        reason = "missing"
    elif current.sha256 != sha256(write.content):
        reason = "content changed"
    else:
        changes = _attrs_differ(current, write.mode, write.owner, write.group)
        if not changes:
            return []
        reason = ", ".join(changes)
    return [dataclasses.replace(write, reason=reason)]


def _path(host: HostSpec, seen: ObservedHost, task: Task, become: bool | None) -> list[Action]:
    f = task.file
    assert f is not None
    current = observed_file(seen, f.path)

    def ensure(reason: str, state: PathState) -> list[Action]:
        attrs = {} if state == "absent" else {"mode": f.mode, "owner": f.owner, "group": f.group}
        return [EnsurePath(host.name, reason, become, path=f.path, state=state, notify=tuple(task.notify), **attrs)]

    if f.state == "absent":
        return ensure("present", "absent") if current.exists else []
    if f.state == "directory" and (not current.exists or current.kind != "directory"):
        return ensure("missing", "directory")
    if f.state == "touch" and not current.exists:
        return ensure("missing", "touch")
    changes = _attrs_differ(current, f.mode, f.owner, f.group) if current.exists else []
    return ensure(", ".join(changes), "attributes") if changes else []


def _command(
    host: HostSpec, seen: ObservedHost, task: Task, become: bool | None, reason: str, check_paths: bool
) -> list[Action]:
    args = task.command or task.shell
    if args is None:
        return []
    if check_paths and args.creates and observed_file(seen, args.creates).exists:
        return []
    if check_paths and args.removes and not observed_file(seen, args.removes).exists:
        return []
    argv: tuple[str, ...]
    if task.shell is not None:
        argv = ("sh", "-c", args.cmd if isinstance(args.cmd, str) else shlex.join(args.cmd))
    else:
        argv = tuple(shlex.split(args.cmd)) if isinstance(args.cmd, str) else tuple(args.cmd)
    why = reason if reason != "command" else (f"{args.creates} is missing" if args.creates else "commands always run")
    return [RunCommand(host.name, why, become, argv=argv, chdir=args.chdir, notify=tuple(task.notify))]

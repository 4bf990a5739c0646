"""plan(spec, observed) -> Plan: pure, deterministic, every action with its reason.

Per host, in order: the Docker engine, preparation tasks, notified handlers, then each service
(images are fetched here, before any rollout; a running container's drift or Consul definition is
fixed in place), removals, and one Consul reload if a definition changed. Containers to start or
replace become ReplaceContainer steps, batched per service into Rollouts that run after all that.
A host without a working Docker gets only the engine and its tasks; its containers are planned on
the next pass, once the probe can see them (apply is level-based).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pushorch.actions import (
    Action,
    EnsurePath,
    InstallDocker,
    Plan,
    PullImage,
    ReloadConsul,
    RemoveConsul,
    RemoveContainer,
    ReplaceContainer,
    RestartContainer,
    RunCommand,
    ShipImage,
    StartDocker,
    WriteConsul,
    WriteFile,
)
from pushorch.commands import consul as consul_cmd
from pushorch.commands import docker as docker_cmd
from pushorch.commands.system import DOCKER_PACKAGES
from pushorch.observed import ObservedContainer, ObservedFile, ObservedHost
from pushorch.planner.placement import Candidates, place_with_failover
from pushorch.planner.rollout import gate_for, rollout
from pushorch.secret import Secret
from pushorch.spec import CopyArgs, HostSpec, Play, Service, Spec, Task, TemplateArgs, UpdatePolicy

MANAGED = "pushorch.service"
REPLACES = "pushorch.replaces"  # on an instance started because its host was lost: that host


@dataclass(frozen=True, slots=True)
class Options:
    prune: bool = False
    playbooks: tuple[str, ...] = ()  # basenames; prune only touches services these playbooks created
    now: float | None = None  # epoch seconds, for failover.after; None: no grace-based failover


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    return list(dict.fromkeys(paths))


def needs_docker(host: HostSpec) -> bool:
    """Whether the plan for this host reads Docker's state (services or a docker task)."""
    return any(p.services or any(t.docker is not None for t in p.tasks) for p in host.plays)


def probe_images(host: HostSpec) -> list[str]:
    return list(dict.fromkeys(s.image for play in host.plays for s in play.services))


def placements(spec: Spec, observed: Mapping[str, ObservedHost], now: float | None = None) -> dict[str, list[str]]:
    """service -> the hosts that run it (see placement.py: rendezvous, failover, stickiness)."""
    return {name: hosts for name, (hosts, _) in _placed(spec, observed, now).items()}


def _placed(
    spec: Spec, observed: Mapping[str, ObservedHost], now: float | None
) -> dict[str, tuple[list[str], dict[str, str]]]:
    services: dict[str, Service] = {}
    declared: dict[str, list[str]] = {}
    for name, host in spec.hosts.items():
        for play in host.plays:
            for service in play.services:
                services.setdefault(service.name, service)
                if _eligible(service, host):
                    declared.setdefault(service.name, []).append(name)
    out = {}
    for name, hosts in declared.items():
        service = services[name]
        seen = {h: observed.get(h) for h in hosts}
        up = [h for h in hosts if (o := seen[h]) is None or (o.reachable and not o.error)]
        failed = {h for h in up if _failed_past_grace(service, seen[h], now)}
        eligible = [h for h in up if h not in failed]
        running = [h for h in eligible if any(c.running for c in _of(seen[h], name))]
        taken = {c.labels.get(REPLACES, "") for h in up for c in _of(seen[h], name) if c.running} - {""}
        candidates = Candidates(name, service.replicas, hosts, eligible, running, taken, service.failover.failback)
        out[name] = place_with_failover(candidates)
    return out


def _of(seen: ObservedHost | None, service: str) -> list[ObservedContainer]:
    return seen.containers_of(service) if seen is not None else []


def _failed_past_grace(service: Service, seen: ObservedHost | None, now: float | None) -> bool:
    """The host's instance has been stopped for longer than failover.after (and none runs there)."""
    if not service.failover.enabled or service.replicas is None or now is None or seen is None:
        return False
    mine = seen.containers_of(service.name)
    if not mine or any(c.running for c in mine):
        return False
    stopped = [_epoch(c.finished) for c in mine if c.finished]
    return bool(stopped) and now - max(stopped) > service.failover.after


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z) as epoch seconds; 0 when it cannot be read."""
    try:
        head, _, _ = stamp.partition(".")
        return datetime.fromisoformat(head.rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return 0.0


def _eligible(service: Service, host: HostSpec) -> bool:
    if service.name in host.excluded:
        return False
    required = service.placement.require if service.placement else {}
    return all(host.vars.get(key) == value for key, value in required.items())


def plan(spec: Spec, observed: Mapping[str, ObservedHost], options: Options | None = None) -> Plan:
    options = options or Options()
    placed_with = _placed(spec, observed, options.now)
    placed = {name: hosts for name, (hosts, _) in placed_with.items()}
    replaces = {(name, host): lost for name, (_, moves) in placed_with.items() for host, lost in moves.items()}
    declared = {s.name for h in spec.hosts.values() for p in h.plays for s in p.services}
    actions: list[Action] = []
    replacements: list[tuple[Play, Service, ReplaceContainer]] = []
    unreachable = {n: o.error or "unreachable" for n, o in observed.items() if o.error or not o.reachable}
    for name, host in spec.hosts.items():
        seen = observed.get(name)
        if seen is None or not seen.reachable or seen.error:
            continue
        actions.extend(_host_plan(host, seen, placed, declared, options, replacements, replaces))
    rollouts = []
    for service_name in dict.fromkeys(s.name for _, s, _ in replacements):
        mine = [(p, s, r) for p, s, r in replacements if s.name == service_name]
        play, service, _ = mine[0]
        steps = [r for _, _, r in mine]
        rollouts.append(rollout(service, play.policy_for(service), steps, len(placed.get(service_name, []))))
    batches, max_fail, fatal = _host_batching(spec, [n for n in spec.hosts if n not in unreachable])
    return Plan(tuple(actions), unreachable, tuple(rollouts), batches, max_fail, fatal)


def _host_batching(spec: Spec, hosts: list[str]) -> tuple[tuple[tuple[str, ...], ...], float | None, bool]:
    """Ansible's play keywords over the host actions. Plays merge per host, so the strictest wins:
    the smallest `serial`, the lowest `max_fail_percentage`, any `any_errors_fatal`."""
    plays = [p for h in spec.hosts.values() for p in h.plays]
    sizes = [p.serial.of(len(hosts), minimum=1) for p in plays if p.serial is not None]
    limits = [p.max_fail_percentage for p in plays if p.max_fail_percentage is not None]
    fatal = any(p.any_errors_fatal for p in plays)
    if not (sizes or limits or fatal) or not hosts:
        return (), None, False
    size = min(sizes) if sizes else len(hosts)
    return tuple(tuple(hosts[i : i + size]) for i in range(0, len(hosts), size)), min(limits, default=None), fatal


def _host_plan(
    host: HostSpec,
    seen: ObservedHost,
    placed: dict[str, list[str]],
    declared: set[str],
    options: Options,
    replacements: list[tuple[Play, Service, ReplaceContainer]],
    replaces: dict[tuple[str, str], str],
) -> list[Action]:
    out: list[Action] = []
    services = [(play, s) for play in host.plays for s in play.services if host.name in placed.get(s.name, [])]
    out.extend(_docker_engine(host, seen, needed=bool(services)))
    for play_index, play in enumerate(host.plays):
        out.extend(_tasks(host, seen, play_index, play))
    sources = dict(zip((id(p) for p in host.plays), host.sources, strict=True))
    if not seen.docker_running:
        return out  # containers next pass, when the probe can see them
    consul_changed = False
    for play, service in services:
        lost = replaces.get((service.name, host.name), "")
        steps, replace = _service(host, seen, sources[id(play)], play, service, lost)
        consul_changed |= any(isinstance(a, WriteConsul) for a in steps)
        out.extend(steps)
        if replace is not None:
            replacements.append((play, service, replace))
    wanted = {s.name for _, s in services}
    for container in seen.containers:
        if container.service in wanted:
            continue
        if container.service in declared:
            reason = "placed on other hosts"
        elif options.prune and container.labels.get("pushorch.playbook") in options.playbooks:
            reason = "no longer declared (--prune)"
        else:
            continue  # never touch what the given playbooks do not declare, without --prune
        out.append(RemoveContainer(host.name, reason, service=container.service, name=container.name))
        path = container.labels.get("pushorch.consul-file")
        observed_file = seen.files.get(path or "")
        if path and (observed_file is None or observed_file.exists):
            out.append(RemoveConsul(host.name, reason, service=container.service, path=path))
            consul_changed = True
    # With neither a binary nor an agent there is nothing to reload: an agent started later reads the dir.
    if consul_changed and (seen.consul_binary or seen.consul_agent):
        out.append(ReloadConsul(host.name, "a definition changed", binary=seen.consul_binary))
    return out


def _docker_engine(host: HostSpec, seen: ObservedHost, needed: bool) -> list[Action]:
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


def _file(seen: ObservedHost, path: str) -> ObservedFile:
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


def _tasks(host: HostSpec, seen: ObservedHost, play_index: int, play: Play) -> list[Action]:
    out: list[Action] = []
    notified: list[str] = []
    for task_index, task in enumerate(play.tasks):
        become = task.become if task.become is not None else (play.become or None)
        steps = _task(host, seen, play_index, task_index, task, become)
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
    notify = tuple(task.notify)
    if task.template is not None or task.copy_ is not None:
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
        current = _file(seen, args.dest)
        if not current.exists:
            reason = "missing"
        elif current.sha256 != sha256(content):
            reason = "content changed"
        else:
            changes = _attrs_differ(current, mode, args.owner, args.group)
            if not changes:
                return []
            reason = ", ".join(changes)
        return [
            WriteFile(
                host.name,
                reason,
                become,
                path=args.dest,
                content=content,
                mode=mode,
                owner=args.owner,
                group=args.group,
                secret=secret,
                notify=notify,
            )
        ]
    if task.file is not None:
        f = task.file
        current = _file(seen, f.path)

        def ensure(reason: str, state: str) -> list[Action]:
            attrs = {} if state == "absent" else {"mode": f.mode, "owner": f.owner, "group": f.group}
            return [EnsurePath(host.name, reason, become, path=f.path, state=state, notify=notify, **attrs)]

        if f.state == "absent":
            return ensure("present", "absent") if current.exists else []
        if f.state == "directory" and (not current.exists or current.kind != "directory"):
            return ensure("missing", "directory")
        if f.state == "touch" and not current.exists:
            return ensure("missing", "touch")
        changes = _attrs_differ(current, f.mode, f.owner, f.group) if current.exists else []
        return ensure(", ".join(changes), "attributes") if changes else []
    if task.command is not None or task.shell is not None:
        return _command(host, seen, task, become, "command", check_paths=True)
    return []


def _command(
    host: HostSpec, seen: ObservedHost, task: Task, become: bool | None, reason: str, check_paths: bool
) -> list[Action]:
    args = task.command or task.shell
    if args is None:
        return []
    if check_paths and args.creates and _file(seen, args.creates).exists:
        return []
    if check_paths and args.removes and not _file(seen, args.removes).exists:
        return []
    argv: tuple[str, ...]
    if task.shell is not None:
        argv = ("sh", "-c", args.cmd if isinstance(args.cmd, str) else shlex.join(args.cmd))
    else:
        argv = tuple(shlex.split(args.cmd)) if isinstance(args.cmd, str) else tuple(args.cmd)
    why = reason if reason != "command" else (f"{args.creates} is missing" if args.creates else "commands always run")
    return [RunCommand(host.name, why, become, argv=argv, chdir=args.chdir, notify=tuple(task.notify))]


def _service(
    host: HostSpec, seen: ObservedHost, playbook: str, play: Play, service: Service, lost: str = ""
) -> tuple[list[Action], ReplaceContainer | None]:
    """Actions for one service on one host, and the replacement the rollout runs (if any)."""
    out: list[Action] = []
    policy = play.policy_for(service)
    digest = docker_cmd.spec_hash(service)
    name = docker_cmd.container_name(service.name, digest)
    mine = seen.containers_of(service.name)
    current = sorted((c for c in mine if c.spec_hash == digest), key=lambda c: not c.running)
    running_stale = [c for c in mine if c.spec_hash != digest and c.running]
    kept = sorted((c for c in mine if c.spec_hash != digest and not c.running), key=lambda c: c.finished, reverse=True)
    # Kept containers beyond `keep` (counting the ones this run retires) go; the rest stay for rollback.
    drop = [c.name for c in kept[max(0, policy.keep - len(running_stale)) :]]
    if current and current[0].running:
        for extra in current[1:] + running_stale:
            out.append(RemoveContainer(host.name, "duplicate", service=service.name, name=extra.name))
        out.extend(RemoveContainer(host.name, f"beyond keep={policy.keep}", service=service.name, name=n) for n in drop)
        out.extend(_consul_update(host, seen, service, policy, current[0]))
        return out, None
    if current and not running_stale:
        out.append(
            RestartContainer(host.name, f"{current[0].state} (drift)", service=service.name, name=current[0].name)
        )
        out.extend(_consul_update(host, seen, service, policy, current[0]))
        return out, None
    if not current and service.image not in seen.images:
        out.append(_fetch(host, service))
    for extra in current[1:]:
        out.append(RemoveContainer(host.name, "duplicate", service=service.name, name=extra.name))
    dynamic = policy.order == "start-first"
    argv: tuple[str, ...] = ()
    env_file = None
    if current:  # a kept container of this very spec (a rollback, or a playbook reverted): start it again
        name = current[0].name
        reason = "back to kept container " + name
    else:
        consul_file = consul_cmd.definition_path(service.consul, service.name) if service.consul else ""
        labels = {
            MANAGED: service.name,
            "pushorch.spec-hash": digest,
            "pushorch.version": service.image_version,
            "pushorch.playbook": playbook,
            "pushorch.shape": json.dumps(docker_cmd.shape(service), sort_keys=True),
            "pushorch.consul-file": consul_file,
        }
        if lost:
            labels[REPLACES] = lost
        env_file = docker_cmd.env_file(service, name)
        argv = docker_cmd.run(service, name, labels, env_file[0] if env_file else None, dynamic)
        reason = f"failover from {lost}" if lost else "not running"
    if running_stale:
        reason = "replace: " + _explain(running_stale[0].labels.get("pushorch.shape"), service)
    consul_path, consul_content = _consul_definition(host, service, digest)
    fixed = consul_cmd.host_port(service)
    replace = ReplaceContainer(
        host.name,
        reason,
        service=service.name,
        version=service.image_version,
        old_version=running_stale[0].version if running_stale else "",
        name=name,
        argv=argv,
        env_file=env_file,
        old=tuple(c.name for c in running_stale),
        order=policy.order,
        gate=gate_for(service, policy, host.name),
        consul_path=consul_path,
        consul_content=consul_content,
        consul_reload=_reload_mode(seen, service) if consul_path else "",
        dynamic_port=(fixed, _container_port(service, fixed)) if dynamic and fixed else None,
        stop_timeout=int(service.stop_timeout),
        drop=tuple(drop),
    )
    return out, replace


def _fetch(host: HostSpec, service: Service) -> Action:
    if service.source == "ship":
        return ShipImage(host.name, "image not on the host", image=service.image)
    registry = service.registry
    return PullImage(
        host.name,
        "image not on the host",
        image=service.image,
        registry=registry.server if registry else None,
        username=registry.username if registry else None,
        password=registry.password if registry else None,
    )


def _container_port(service: Service, host_port: int) -> int:
    return next(p.container for p in service.ports if p.host == host_port)


def _reload_mode(seen: ObservedHost, service: Service) -> str:
    """How this host's Consul picks up a definition: `consul reload`, the agent's API, or not at all."""
    setting = service.consul.reload if service.consul else "none"
    if setting == "auto":
        return "binary" if seen.consul_binary else "api" if seen.consul_agent else ""
    return "" if setting == "none" else setting


def _consul_definition(host: HostSpec, service: Service, digest: str) -> tuple[str, str]:
    if not _consul_on(service):
        return "", ""
    assert service.consul is not None
    address = str(host.vars.get("ansible_host") or host.name)
    path = consul_cmd.definition_path(service.consul, service.name)
    return path, consul_cmd.definition(service, host.name, address, service.image_version, digest)


def _consul_update(
    host: HostSpec, seen: ObservedHost, service: Service, policy: UpdatePolicy, running: ObservedContainer
) -> list[Action]:
    """A running instance whose definition file is missing or differs gets it (re)written."""
    path, content = _consul_definition(host, service, running.spec_hash)
    if not path:
        return []
    fixed = consul_cmd.host_port(service)
    if policy.order == "start-first" and fixed:
        published = running.ports.get(f"{_container_port(service, fixed)}/tcp", "")
        if published.rpartition(":")[2].isdigit():
            content = consul_cmd.with_port(content, fixed, int(published.rpartition(":")[2]))
    current_file = _file(seen, path)
    if current_file.exists and current_file.sha256 == sha256(content):
        return []
    why = "missing" if not current_file.exists else "definition changed"
    return [WriteConsul(host.name, why, service=service.name, path=path, content=content)]


def _consul_on(service: Service) -> bool:
    return service.consul is not None and service.consul.enabled


def _explain(old_shape: str | None, service: Service) -> str:
    """What changed between the running container and the spec, naming fields (never secret values)."""
    try:
        old = json.loads(old_shape or "{}")
    except ValueError:
        old = {}
    new = docker_cmd.shape(service)
    changes = []
    for key in sorted(new):
        if old.get(key) == new[key]:
            continue
        if key == "image":
            changes.append(f"image changed ({old.get('image', '?')} -> {new['image']})")
        elif key == "env":
            before, after = old.get("env") or {}, new["env"]
            names = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes.append(f"env changed ({', '.join(names)})")
        else:
            changes.append(f"{key} changed")
    return ", ".join(changes) or "configuration changed"

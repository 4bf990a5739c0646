"""plan(spec, observed) -> Plan: pure, deterministic, every action with its reason.

Per host, in order: the Docker engine, preparation tasks, notified handlers, then each service
(images are fetched here, before any rollout; a running container's drift or Consul definition is
fixed in place), removals, and one Consul reload if a definition changed. Containers to start or
replace become ReplaceContainer steps, batched per service into Rollouts that run after all that.
A host without a working Docker gets only the engine and its tasks; its containers are planned on
the next pass, once the probe can see them (apply is level-based).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from pushorch.actions import (
    Action,
    AdoptService,
    CreateNetwork,
    JobRun,
    Plan,
    ReloadConsul,
    RemoveConsul,
    RemoveContainer,
    RemoveNetwork,
    ReplaceContainer,
    Rollout,
    WriteConsul,
)
from pushorch.commands import docker as docker_cmd
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner.config import config_files, digests
from pushorch.planner.ingress import ingress_actions, ingress_target
from pushorch.planner.kv import kv_actions
from pushorch.planner.labels import CONSUL_FILE, JOBS, NETWORK, PLAYBOOK, owned_by
from pushorch.planner.placement import Memory, placed
from pushorch.planner.rollout import rollout
from pushorch.planner.services import held_here, plan_service
from pushorch.planner.tasks import docker_engine, play_tasks
from pushorch.spec import HostSpec, Play, Service, Spec


@dataclass(frozen=True, slots=True)
class Options:
    prune: bool = False
    playbooks: tuple[str, ...] = ()  # owners (load/owner.py); prune only touches what these playbooks created
    memory: Memory = field(default_factory=Memory)  # clock, fleet record, Consul's view: for failover


Replacement = tuple[Play, Service, ReplaceContainer]


def plan(spec: Spec, observed: Mapping[str, ObservedHost], options: Options | None = None) -> Plan:
    options = options or Options()
    placed_with = placed(spec, observed, options.memory)
    hosts_of = {name: p.hosts for name, p in placed_with.items()}
    replaces = {(name, host): lost for name, p in placed_with.items() for host, lost in p.moves.items()}
    recreate = {(name, host): why for name, p in placed_with.items() for host, why in p.recreate.items()}
    notes = tuple(f"{host}: {note}" for p in placed_with.values() for host, note in sorted(p.notes.items()))
    notes += _held_notes(spec, observed)
    declared: dict[str, set[str]] = {}  # service -> the playbooks (owners) that declare it
    for h in spec.hosts.values():
        for _, s, source in h.declared():
            declared.setdefault(s.name, set()).add(source)
    actions: list[Action] = []
    after: list[Action] = []  # removals --prune leaves for after the rollouts
    replacements: list[Replacement] = []
    unreachable = {n: o.error or "unreachable" for n, o in observed.items() if o.error or not o.reachable}
    for name, host in spec.hosts.items():
        seen = observed.get(name)
        if seen is None or not seen.reachable or seen.error:
            continue
        actions.extend(_host_plan(host, seen, hosts_of, declared, options, replacements, replaces, recreate, after))
        pruning = options.playbooks if options.prune else ()
        actions.extend(ingress_actions(host, seen, spec, hosts_of, observed, pruning))
    # Configuration first: the writer's KV steps run before its other steps and before every rollout.
    actions[:0] = kv_actions(spec, observed, options.prune, options.playbooks)
    rollouts = []
    for service_name in dict.fromkeys(s.name for _, s, _ in replacements):
        mine = [(p, s, r) for p, s, r in replacements if s.name == service_name]
        play, service, _ = mine[0]
        steps = [r for _, _, r in mine]
        if service.ingress is not None:  # each ingress drains the instance first, takes it back after its gate
            steps = [dataclasses.replace(r, ingress=ingress_target(spec, service, r)) for r in steps]
        planned = rollout(service, play.policy_for(service), steps, len(hosts_of.get(service_name, [])))
        rollouts.append(dataclasses.replace(planned, jobs=_jobs(spec, observed, service, planned)))
    # A dependency with nothing to roll out this run is already where it should be: nothing to wait for.
    moving = {r.service for r in rollouts}
    rollouts = [dataclasses.replace(r, depends_on=tuple(d for d in r.depends_on if d in moving)) for r in rollouts]
    batches, max_fail, fatal = _host_batching(spec, [n for n in spec.hosts if n not in unreachable])
    placement = {name: tuple(hosts) for name, hosts in hosts_of.items()}
    return Plan(tuple(actions), unreachable, tuple(rollouts), batches, max_fail, fatal, placement, notes, tuple(after))


def _held_files(host: HostSpec, seen: ObservedHost, services: list[tuple[Play, Service]]) -> frozenset[str]:
    """Config files of services a `rollback --hold` keeps: the playbook's content must not replace the
    files the rollback put back (tasks skip them, as they skip the files a rollout writes)."""
    if not seen.holds:
        return frozenset()
    paths: set[str] = set()
    for _, service in services:
        files = config_files(host, service)
        if held_here(seen, service.name, docker_cmd.spec_hash(service, digests(files))):
            paths.update(f.path for f in files)
    return frozenset(paths)


def _held_notes(spec: Spec, observed: Mapping[str, ObservedHost]) -> tuple[str, ...]:
    """What `rollback --hold` keeps where it is (only hosts that hold something pay for the hash)."""
    out = []
    for name, seen in observed.items():
        host = spec.hosts.get(name)
        if host is None or not seen.holds:
            continue
        for play in host.plays:
            for service in play.services:
                digest = docker_cmd.spec_hash(service, digests(config_files(host, service)))
                if held_here(seen, service.name, digest):
                    kept = seen.holds[service.name][1]
                    out.append(
                        f"{name}: {service.name}: held on {kept} by `rollback --hold`: the playbook's version is"
                        " not deployed here until it changes or `pushorch rollback --release`"
                    )
    return tuple(out)


def _jobs(spec: Spec, observed: Mapping[str, ObservedHost], service: Service, planned: Rollout) -> tuple[JobRun, ...]:
    """The service's jobs, on the first host of the first batch, unless a running container says they
    ran for this image and these commands already (a rollout that completes records it on its containers)."""
    if not service.jobs or not planned.batches:
        return ()
    digest = docker_cmd.job_digest(service)
    ran = any(
        c.labels.get(JOBS) == digest
        for seen in observed.values()
        for c in seen.containers_of(service.name)
        if c.running
    )
    if ran:
        return ()
    first = planned.batches[0][0]
    runs = []
    for job in service.jobs:
        name = f"{service.name}-job-{job.name}-{digest[:8]}"
        env_file = docker_cmd.env_file(service, name)
        argv = docker_cmd.bounded_job(
            docker_cmd.job_run(service, job.command, name, env_file and env_file[0]), name, job.timeout
        )
        runs.append(JobRun(first.host, job.name, argv, env_file, job.timeout, first.become, name))
    return tuple(runs)


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
    placed_on: dict[str, list[str]],
    declared: dict[str, set[str]],
    options: Options,
    replacements: list[Replacement],
    replaces: dict[tuple[str, str], str],
    recreate: dict[tuple[str, str], str],
    after: list[Action],
) -> list[Action]:
    out: list[Action] = []
    services = [(play, s) for play in host.plays for s in play.services if host.name in placed_on.get(s.name, [])]
    out.extend(docker_engine(host, seen, needed=bool(services)))
    sources = dict(zip((id(p) for p in host.plays), host.sources, strict=True))
    if seen.docker_running:
        out.extend(_networks(host, seen, sources, options))
    # Services first: a service being replaced writes its own config files in its rollout (host by
    # host, under its gates), so the host phase leaves those files, and their handlers, alone.
    service_steps: list[Action] = []
    mine: list[Replacement] = []
    for play, service in services if seen.docker_running else []:
        lost = replaces.get((service.name, host.name), "")
        again = recreate.get((service.name, host.name), "")
        steps, replace = plan_service(host, seen, sources[id(play)], play, service, lost, again)
        service_steps.extend(steps)
        if replace is not None:
            mine.append((play, service, replace))
    rolled = frozenset(f.path for _, _, r in mine for f in r.files) | _held_files(host, seen, services)
    for play_index, play in enumerate(host.plays):
        out.extend(play_tasks(host, seen, play_index, play, rolled))
    if not seen.docker_running:
        return out  # containers next pass, when the probe can see them
    out.extend(service_steps)
    out.extend(_adoptions(host, seen, services, sources))
    written = [a.path for a in service_steps if isinstance(a, WriteConsul)]
    removals = _removals(host, seen, {s.name for _, s in services}, declared, options)
    # --prune's removals wait for the rollouts (a renamed service runs before its old name goes), and
    # an old container holding the host port a new service publishes becomes that start's old one.
    pruned = [a for a in removals if a.reason == PRUNED]
    removals = [a for a in removals if a.reason != PRUNED]
    replacements.extend(_taking_over(seen, mine, pruned))
    changed = bool(written) or any(isinstance(a, RemoveConsul) for a in removals)
    out.extend(removals)
    reloadable = seen.consul_binary or seen.consul_agent  # neither: an agent started later reads the dir
    if (changed or seen.consul_reload_pending) and reloadable:
        why = "a definition changed" if changed else "the last reload failed: the agent has not loaded its definitions"
        reload = ReloadConsul(host.name, why, binary=not seen.consul_agent, pending=seen.consul_reload_pending)
        out.append(dataclasses.replace(reload, written=tuple(written)))
    after.extend(pruned)
    if reloadable and any(isinstance(a, RemoveConsul) for a in pruned):
        after.append(ReloadConsul(host.name, "a definition was removed", binary=not seen.consul_agent))
    return out


def _adoptions(
    host: HostSpec, seen: ObservedHost, services: list[tuple[Play, Service]], sources: dict[int, str]
) -> list[Action]:
    """A service whose containers here belong to another playbook (it moved from one to this one)
    becomes this playbook's: a later `--prune` of the playbook it left must not remove it."""
    out: list[Action] = []
    for play, service in services:
        owned = seen.owner_of(service.name)
        source = sources[id(play)]
        if owned and not owned_by(owned, (source,)):
            why = f"declared by this playbook now, owned by {owned}"
            out.append(AdoptService(host.name, why, service=service.name, owner=source))
    return out


def _taking_over(seen: ObservedHost, mine: list[Replacement], pruned: list[Action]) -> list[Replacement]:
    """A first start (no old container) whose service publishes a host port that a container --prune
    removes also publishes (a renamed service): that container becomes its old one, stopped before the
    start and started again if the gate fails; its removal comes after the rollouts."""
    leaving = {a.name: a for a in pruned if isinstance(a, RemoveContainer)}
    by_name = {c.name: c for c in seen.containers if c.name in leaving and c.running}
    out = []
    for play, service, step in mine:
        if not step.old and step.order == "stop-first":
            wanted = {(p.protocol, p.host) for p in service.ports if p.host is not None}
            holder = next((c for c in by_name.values() if wanted & _published(c)), None)
            if holder is not None:
                del by_name[holder.name]
                why = f"takes over from {holder.service} (no longer declared; removed once the rollouts completed)"
                step = dataclasses.replace(
                    step, old=(holder.name,), old_version=holder.version or holder.service, reason=why
                )
        out.append((play, service, step))
    return out


def _published(container: ObservedContainer) -> set[tuple[str, int]]:
    """(protocol, host port) the container publishes ("8080/tcp" -> "0.0.0.0:8080")."""
    out = set()
    for key, value in container.ports.items():
        port = value.rpartition(":")[2]
        if port.isdigit():
            out.add((key.partition("/")[2] or "tcp", int(port)))
    return out


def _networks(host: HostSpec, seen: ObservedHost, sources: dict[int, str], options: Options) -> list[Action]:
    """The plays' networks created where missing (before any container needs them); with --prune,
    networks a given playbook created that no play declares any more (a network still in use fails
    its step, as `docker network rm` refuses it)."""
    out: list[Action] = []
    declared: set[str] = set()
    for play in host.plays:
        for network in play.networks:
            if network.name in declared:
                continue
            declared.add(network.name)
            if network.name not in seen.networks:
                marks = {**network.labels, NETWORK: network.name, PLAYBOOK: sources[id(play)]}
                out.append(
                    CreateNetwork(
                        host.name,
                        "missing",
                        name=network.name,
                        driver=network.driver,
                        internal=network.internal,
                        labels=tuple(sorted(marks.items())),
                        subnet=network.subnet,
                        gateway=network.gateway,
                    )
                )
    if options.prune:
        # A network a container still joins stays, a stopped one's too: it is a way back (`rollback`,
        # a revert) and `docker start` fails without it.
        joined = {n for c in seen.containers for n in c.networks}
        for name, playbook in sorted(seen.networks.items()):
            if owned_by(playbook, options.playbooks) and name not in declared and name not in joined:
                out.append(RemoveNetwork(host.name, "no longer declared (--prune)", name=name))
    return out


PRUNED = "no longer declared (--prune)"


def _removals(
    host: HostSpec, seen: ObservedHost, wanted: set[str], declared: dict[str, set[str]], options: Options
) -> list[Action]:
    """Containers of services not placed here (and their Consul files); undeclared ones only with --prune."""
    out: list[Action] = []
    for container in seen.containers:
        if container.service in wanted:
            continue
        owned = seen.owners.get(container.service) or container.labels.get(PLAYBOOK)
        if owned_by(owned, declared.get(container.service, ())):
            reason = "placed on other hosts"  # by its own playbook: another's same-named service is not ours
        elif options.prune and owned_by(owned, options.playbooks):
            reason = PRUNED
        else:
            continue  # never touch what the given playbooks do not declare, without --prune
        out.append(RemoveContainer(host.name, reason, service=container.service, name=container.name))
        path = container.labels.get(CONSUL_FILE)
        observed_file = seen.files.get(path or "")
        if path and (observed_file is None or observed_file.exists):
            out.append(RemoveConsul(host.name, reason, service=container.service, path=path))
    return out

"""Plan one service on one host (pure): its containers sorted into named sets, then one branch per set.

The sets (after Nomad's reconciler: untainted / migrate / lost / stop):
- `serving`: containers of the spec's hash that run; the first is kept, the rest are duplicates;
- `stopped`: containers of the spec's hash that do not run (drift, or a kept container of this spec);
- `stale`: running containers of another hash: the rollout replaces them;
- `kept`: stopped containers of other hashes, newest first: kept for rollback up to `update.keep`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from pushorch.actions import (
    Action,
    EndMaintenance,
    PullImage,
    ReloadMode,
    RemoveContainer,
    ReplaceContainer,
    RestartContainer,
    ShipImage,
    StopContainer,
    WriteConsul,
)
from pushorch.commands import docker as docker_cmd
from pushorch.consul import commands as consul_cmd
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner import labels
from pushorch.planner.config import config_files, digests
from pushorch.planner.rollout import gate_for
from pushorch.planner.tasks import observed_file
from pushorch.spec import HostSpec, Play, Service, UpdatePolicy

NEVER_STARTED = "never started (a `docker run` cut short)"


@dataclass(frozen=True, slots=True)
class Instances:
    """One service's containers on one host, sorted into the sets the decision reads."""

    serving: list[ObservedContainer]
    stopped: list[ObservedContainer]
    stale: list[ObservedContainer]
    kept: list[ObservedContainer]

    @classmethod
    def sort(cls, mine: list[ObservedContainer], digest: str) -> Instances:
        ours = [c for c in mine if c.spec_hash == digest]
        others = [c for c in mine if c.spec_hash != digest]
        return cls(
            serving=[c for c in ours if c.running],
            stopped=[c for c in ours if not c.running],
            stale=[c for c in others if c.running],
            kept=sorted((c for c in others if not c.running), key=lambda c: c.finished, reverse=True),
        )

    def beyond_keep(self, keep: int) -> list[str]:
        """Kept containers beyond `keep`, counting the ones this run retires (the stale ones)."""
        return [c.name for c in self.kept[max(0, keep - len(self.stale)) :]]


def plan_service(
    host: HostSpec, seen: ObservedHost, playbook: str, play: Play, service: Service, lost: str = "", again: str = ""
) -> tuple[list[Action], ReplaceContainer | None]:
    """Actions for one service on one host, and the replacement its rollout runs (if any).
    `again`: why the serving container is replaced in place by a fresh one of the same spec (failover)."""
    unstarted = [c for c in seen.containers_of(service.name) if c.state == "created"]
    if unstarted:
        # A `docker run` cut short (the controller or dockerd killed mid-start): never ran, nothing to
        # roll back to, and a dockerd that restarted may still hold its host port (the soak found
        # every later start on that host failing "port is already allocated"). Removed first.
        rest = dataclasses.replace(seen, containers=tuple(c for c in seen.containers if c not in unstarted))
        out, replace = plan_service(host, rest, playbook, play, service, lost, again)
        return _remove(host, service, NEVER_STARTED, [c.name for c in unstarted]) + out, replace
    policy = play.policy_for(service)
    files = config_files(host, service)
    digest = docker_cmd.spec_hash(service, digests(files))
    if held_here(seen, service.name, digest):
        return [], None  # `rollback --hold`: the playbook's version is refused here until it changes
    sets = Instances.sort(seen.containers_of(service.name), digest)
    if sets.serving and again:
        # A fresh container under the same name: `docker run` replaces the failing one (no way back to it).
        fresh = Instances(serving=[], stopped=[], stale=[], kept=sets.kept)
        out, replace = _replace(host, seen, playbook, service, policy, fresh, digest, lost, digests(files))
        old_version = sets.serving[0].version
        connect = docker_cmd.connects(service)
        return out, dataclasses.replace(
            replace, reason=again, old_version=old_version, recreate=True, files=files, connect=connect
        )
    if any(c.name in seen.ungated for c in sets.serving + sets.stopped):
        # An interrupted run started it and never saw it pass its gate: it is not serving (and if it
        # stopped since, starting it as drift would serve it ungated). Replace it again (`docker run`
        # takes its name) from what ran before: the container still running (start-first), or the one
        # that run had just stopped (stop-first), the newest kept one.
        before = sets.stale or sets.kept[:1]
        again_from = Instances(serving=[], stopped=[], stale=before, kept=[c for c in sets.kept if c not in before])
        out, replace = _replace(host, seen, playbook, service, policy, again_from, digest, lost, digests(files))
        why = "never passed its gate (an interrupted run started it): gate it again"
        connect = docker_cmd.connects(service)
        return out, dataclasses.replace(replace, reason=why, files=files, connect=connect)
    if sets.serving:
        return _keep(host, seen, service, policy, sets), None
    if sets.stopped and not sets.stale:
        return _restart(host, seen, service, policy, sets), None
    out, replace = _replace(host, seen, playbook, service, policy, sets, digest, lost, digests(files))
    connect = docker_cmd.connects(service) if replace.argv else ()
    return out, dataclasses.replace(replace, files=files, connect=connect)


def held_here(seen: ObservedHost, service: str, digest: str) -> bool:
    """A `rollback --hold` refuses the playbook's spec `digest` on this host (a changed playbook ends it)."""
    hold = seen.holds.get(service)
    return hold is not None and hold[0] == digest


def back_to(
    host: HostSpec,
    seen: ObservedHost,
    playbook: str,
    play: Play,
    service: Service,
    kept: ObservedContainer,
    running: list[ObservedContainer],
) -> tuple[list[Action], ReplaceContainer]:
    """`rollback` on one host: start the kept container again as it was (its own image, env and, from
    its snapshot, config files), replacing what runs, under the service's policy and gate."""
    policy = play.policy_for(service)
    files = config_files(host, service)
    sets = Instances(serving=[], stopped=[kept], stale=running, kept=[])
    out, replace = _replace(host, seen, playbook, service, policy, sets, kept.spec_hash, "", digests(files))
    why = f"rollback to kept container {kept.name} ({kept.version}: its image, env and config files as they were)"
    return out, dataclasses.replace(replace, reason=why, files=files, snapshot=kept.name, rollback=True)


def _remove(host: HostSpec, service: Service, reason: str, names: list[str]) -> list[Action]:
    return [RemoveContainer(host.name, reason, service=service.name, name=n) for n in names]


def _keep(host: HostSpec, seen: ObservedHost, service: Service, policy: UpdatePolicy, sets: Instances) -> list[Action]:
    """The spec's container runs: remove duplicates, stop (retire) containers of other specs that still
    run beside it (an interrupted start-first rollout's old one: the rollback target), remove kept
    containers beyond `keep` (the retired ones count); fix its Consul file."""
    running, *extra = sets.serving
    out = _remove(host, service, "duplicate", [c.name for c in [*extra, *sets.stopped]])
    timeout = int(service.stop_timeout)
    out += [
        StopContainer(
            host.name,
            "an older version still runs: kept for rollback",
            service=service.name,
            name=c.name,
            stop_timeout=timeout,
        )
        for c in sets.stale
    ]
    out += _remove(host, service, f"beyond keep={policy.keep}", sets.beyond_keep(policy.keep))
    return out + _consul_update(host, seen, service, policy, running) + _end_maintenance(host, seen, service)


def _held(seen: ObservedHost, instance: str) -> bool:
    """In maintenance set by hand (not by a rollout of ours)."""
    reason = seen.maintenance.get(instance)
    return reason is not None and not reason.startswith(consul_cmd.MAINTENANCE_PREFIX)


def _end_maintenance(host: HostSpec, seen: ObservedHost, service: Service) -> list[Action]:
    """A serving instance a rollout left in maintenance (stopped between drain and register) comes back."""
    instance = consul_cmd.service_id(service.name, host.name)
    reason = seen.maintenance.get(instance)
    if reason is None or not reason.startswith(consul_cmd.MAINTENANCE_PREFIX):
        return []
    why = f"left in maintenance by an interrupted rollout ({reason})"
    return [EndMaintenance(host.name, why, service=service.name, service_id=instance)]


def _restart(
    host: HostSpec, seen: ObservedHost, service: Service, policy: UpdatePolicy, sets: Instances
) -> list[Action]:
    """The spec's container exists but stopped, and nothing else runs: start it again (drift)."""
    container = sets.stopped[0]  # names derive from the hash: there is only one
    out: list[Action] = [
        RestartContainer(
            host.name,
            f"{container.state} (drift)",
            service=service.name,
            name=container.name,
            version=container.version,
            gate=gate_for(service, policy, host.name),
        )
    ]
    return out + _consul_update(host, seen, service, policy, container)


def _replace(
    host: HostSpec,
    seen: ObservedHost,
    playbook: str,
    service: Service,
    policy: UpdatePolicy,
    sets: Instances,
    digest: str,
    lost: str,
    config: dict[str, str],
) -> tuple[list[Action], ReplaceContainer]:
    """Start the spec's container (a kept one of this spec, or a new one) in the rollout, replacing `stale`."""
    out: list[Action] = []
    if not sets.stopped and service.image not in seen.images:
        out.append(_fetch(host, service))
    reused = sets.stopped[0] if sets.stopped else None
    out += _remove(host, service, "duplicate", [c.name for c in sets.stopped[1:]])
    dynamic = policy.order == "start-first"
    argv: tuple[str, ...] = ()
    env_file = None
    if reused is not None:  # a kept container of this very spec (a rollback, or a playbook reverted)
        name = reused.name
        reason = "back to kept container " + name
    else:
        name = docker_cmd.container_name(service.name, digest)
        env_file = docker_cmd.env_file(service, name)
        argv = docker_cmd.run(
            service, name, _labels(playbook, service, digest, lost, config), env_file and env_file[0], dynamic
        )
        reason = f"failover from {lost}" if lost else "not running"
    if sets.stale:
        reason = "replace: " + _explain(sets.stale[0].labels.get(labels.SHAPE), service, config)
    consul_path, consul_content = consul_definition(host, service, digest)
    replace = ReplaceContainer(
        host.name,
        reason,
        service=service.name,
        version=service.image_version,
        old_version=sets.stale[0].version if sets.stale else "",
        name=name,
        argv=argv,
        env_file=env_file,
        old=tuple(c.name for c in sets.stale),
        order=policy.order,
        gate=gate_for(service, policy, host.name),
        consul_path=consul_path,
        consul_content=consul_content,
        consul_reload=reload_mode(seen, service) if consul_path else "",
        dynamic_port=moving_port(service, policy),
        stop_timeout=int(service.stop_timeout),
        drop=tuple(sets.beyond_keep(policy.keep)),
        drain=policy.drain,
        drain_delay=policy.drain_delay,
        held=_held(seen, consul_cmd.service_id(service.name, host.name)),
    )
    return out, replace


def _labels(playbook: str, service: Service, digest: str, lost: str, config: dict[str, str]) -> dict[str, str]:
    consul_file = consul_cmd.definition_path(service.consul, service.name) if service.consul else ""
    out = {
        labels.MANAGED: service.name,
        labels.SPEC_HASH: digest,
        labels.VERSION: service.image_version,
        labels.PLAYBOOK: playbook,
        labels.SHAPE: json.dumps(docker_cmd.shape(service, config), sort_keys=True),
        labels.CONSUL_FILE: consul_file,
    }
    if lost:
        out[labels.REPLACES] = lost
    if service.jobs:  # what the next run reads to tell whether its jobs already ran
        out[labels.JOBS] = docker_cmd.job_digest(service)
    return out


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


def moving_port(service: Service, policy: UpdatePolicy) -> tuple[int, int] | None:
    """start-first instances publish Docker-chosen host ports: (the port the spec's Consul definition
    registers — the first fixed host port, or 0 when none is declared — and the container port whose
    published port replaces it). None for stop-first services or ones that publish nothing."""
    if policy.order != "start-first" or not service.ports:
        return None
    fixed = consul_cmd.host_port(service)
    if fixed is None:
        return 0, service.ports[0].container
    return fixed, next(p.container for p in service.ports if p.host == fixed)


def reload_mode(seen: ObservedHost, service: Service) -> ReloadMode:
    """How this host's Consul picks up a definition: `consul reload`, the agent's API, or not at all."""
    setting = service.consul.reload if service.consul else "none"
    if setting == "auto":
        # The agent's API first: the client carries the token and TLS settings the CLI would need on the host.
        return "api" if seen.consul_agent else "binary" if seen.consul_binary else ""
    return "binary" if setting == "binary" else "api" if setting == "api" else ""


def consul_on(service: Service) -> bool:
    return service.consul is not None and service.consul.enabled


def consul_definition(host: HostSpec, service: Service, digest: str) -> tuple[str, str]:
    if not consul_on(service):
        return "", ""
    assert service.consul is not None
    address = str(host.vars.get("ansible_host") or host.name)
    path = consul_cmd.definition_path(service.consul, service.name)
    return path, consul_cmd.definition(service, host.name, address, service.image_version, digest)


def _consul_update(
    host: HostSpec, seen: ObservedHost, service: Service, policy: UpdatePolicy, running: ObservedContainer
) -> list[Action]:
    """A running instance whose definition file is missing or differs gets it (re)written."""
    path, content = consul_definition(host, service, running.spec_hash)
    if not path:
        return []
    moving = moving_port(service, policy)
    if moving:
        published = running.ports.get(f"{moving[1]}/tcp", "")
        if published.rpartition(":")[2].isdigit():
            content = consul_cmd.with_port(content, moving[0], int(published.rpartition(":")[2]))
    current_file = observed_file(seen, path)
    if current_file.exists and current_file.sha256 == labels.sha256(content):
        return []
    why = "missing" if not current_file.exists else "definition changed"
    return [WriteConsul(host.name, why, service=service.name, path=path, content=content)]


def _explain(old_shape: str | None, service: Service, config: dict[str, str]) -> str:
    """What changed between the running container and the spec, naming fields (never secret values)."""
    try:
        old = json.loads(old_shape or "{}")
    except ValueError:
        old = {}
    new = docker_cmd.shape(service, config)
    changes = []
    for key in sorted(new):
        if old.get(key) == new[key]:
            continue
        if key == "image":
            changes.append(f"image changed ({old.get('image', '?')} -> {new['image']})")
        elif key in ("env", "config"):
            before, after = old.get(key) or {}, new[key]
            names = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes.append(f"{key} changed ({', '.join(names)})")
        else:
            changes.append(f"{key} changed")
    return ", ".join(changes) or "configuration changed"

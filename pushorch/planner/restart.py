"""`pushorch restart` (pure): a rolling restart of a service's running containers, under its update
policy and gates, for when nothing in the spec changed (a leaked connection, a config read at start).

Each host running the service's current container gets a restart step (drain, `docker restart`, gate,
register), batched like any rollout (canary, parallelism). There is no earlier version to go back to,
so `auto_revert` does not apply: a failed gate stops the later batches. Hosts whose container is not
the playbook's (drift) are left out and named: `apply` them first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pushorch.actions import Plan, ReplaceContainer
from pushorch.commands import docker as docker_cmd
from pushorch.observed import ObservedHost
from pushorch.planner.config import config_files, digests
from pushorch.planner.ingress import ingress_target
from pushorch.planner.rollout import gate_for, rollout
from pushorch.planner.services import consul_definition, moving_port, reload_mode
from pushorch.spec import Service, Spec, UpdatePolicy


def restart_plan(spec: Spec, observed: Mapping[str, ObservedHost], service: str) -> Plan:
    steps, notes = [], []
    first: tuple[Service, UpdatePolicy] | None = None
    for name, host in spec.hosts.items():
        seen = observed.get(name)
        for play in host.plays:
            for declared in (s for s in play.services if s.name == service):
                policy = play.policy_for(declared)
                first = first or (declared, policy)
                if seen is None or not seen.reachable or seen.error:
                    continue
                digest = docker_cmd.spec_hash(declared, digests(config_files(host, declared)))
                running = [c for c in seen.containers_of(service) if c.running]
                current = next((c for c in running if c.spec_hash == digest), None)
                if current is None:
                    if running:
                        notes.append(f"{name}: {service}: runs another version than the playbook's: apply it first")
                    continue
                path, content = consul_definition(host, declared, digest)
                steps.append(
                    ReplaceContainer(
                        name,
                        "rolling restart",
                        service=service,
                        version=current.version,
                        old_version=current.version,
                        name=current.name,
                        old=(current.name,),
                        gate=gate_for(declared, policy, name),
                        consul_path=path,
                        consul_content=content,
                        consul_reload=reload_mode(seen, declared) if path else "",
                        dynamic_port=moving_port(declared, policy),
                        stop_timeout=int(declared.stop_timeout),
                        restart=True,
                        drain=policy.drain,
                        drain_delay=policy.drain_delay,
                    )
                )
    if policy is None or not steps:
        return Plan(notes=tuple(notes))
    declared_service = next(s for h in spec.hosts.values() for p in h.plays for s in p.services if s.name == service)
    unreachable = {n: o.error or "unreachable" for n, o in observed.items() if o.error or not o.reachable}
    steps = [replace(s, ingress=ingress_target(spec, declared_service, s)) for s in steps]
    batches = rollout(
        declared_service, policy.model_copy(update={"auto_revert": False, "canary": policy.canary}), steps, len(steps)
    )
    return Plan(unreachable=unreachable, rollouts=(batches,), notes=tuple(notes))

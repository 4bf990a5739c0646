"""What failover needs beyond the probe: one health reading per instance that may move, and, for
unreachable hosts, whether another host's Consul agent still sees their instances pass."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from pushorch import consul_client
from pushorch.commands.consul import service_id
from pushorch.execute.health import Prober, Reading
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner.rollout import gate_for
from pushorch.spec import Service, Spec, UpdatePolicy
from pushorch.transport import Transport


def movable(spec: Spec) -> dict[str, Service]:
    """Services whose instances failover may move: `replicas` set and failover on."""
    found = {s.name: s for h in spec.hosts.values() for p in h.plays for s in p.services}
    return {n: s for n, s in found.items() if s.replicas is not None and s.failover.enabled}


async def instance_health(service: Service, host: str, transport: Transport, container: ObservedContainer) -> Reading:
    """One probe of the service's check, as its gate makes it (Docker's own health without a check)."""
    if service.health is None:
        unhealthy = container.health == "unhealthy"
        return Reading(not unhealthy, f"docker health {container.health or 'none'}")
    gate = gate_for(service, UpdatePolicy(), host)
    return await Prober(transport, container.name, gate, published=container.ports).check()


async def health_of_movable(
    spec: Spec, observed: Mapping[str, ObservedHost], transports: Mapping[str, Transport]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """((service, host) failing their check, (service, host) passing), for running instances that may move."""
    services = movable(spec)
    jobs, keys = [], []
    for host, seen in observed.items():
        if host not in transports or not seen.reachable or seen.error:
            continue
        for container in seen.containers:
            service = services.get(container.service)
            if service is not None and container.running:
                keys.append((service.name, host))
                jobs.append(instance_health(service, host, transports[host], container))
    readings = await asyncio.gather(*jobs, return_exceptions=True)
    failing = {k for k, r in zip(keys, readings, strict=True) if isinstance(r, Reading) and not r.healthy}
    passing = {k for k, r in zip(keys, readings, strict=True) if isinstance(r, Reading) and r.healthy}
    return failing, passing


async def passing_in_consul(
    spec: Spec, observed: Mapping[str, ObservedHost], transports: Mapping[str, Transport], unreachable: set[str]
) -> frozenset[tuple[str, str]]:
    """(service, unreachable host) pairs whose instance another host's agent still reports passing."""
    if not unreachable:
        return frozenset()
    witness = next((h for h, o in sorted(observed.items()) if h in transports and o.consul_agent and not o.error), None)
    if witness is None:
        return frozenset()
    found: set[tuple[str, str]] = set()
    for service in movable(spec).values():
        if service.consul is None or not service.consul.enabled:
            continue
        try:
            ids = await consul_client.passing_ids(transports[witness], service.consul.name or service.name)
        except (OSError, TimeoutError):
            continue
        found.update((service.name, h) for h in unreachable if service_id(service.name, h) in ids)
    return frozenset(found)

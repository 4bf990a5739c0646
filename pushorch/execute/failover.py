"""What failover needs beyond the probe: one health reading per instance that may move, and, for
unreachable hosts, whether another host's Consul agent still sees their instances pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pushorch.consul import client as consul_client
from pushorch.consul.commands import service_id
from pushorch.errors import PushorchError
from pushorch.execute.health import Reading, instance_health
from pushorch.observed import ObservedHost
from pushorch.spec import Service, Spec
from pushorch.transport import Transport


def movable(spec: Spec) -> dict[str, Service]:
    """Services whose instances failover may move: `replicas` set and failover on."""
    found = {s.name: s for h in spec.hosts.values() for p in h.plays for s in p.services}
    return {n: s for n, s in found.items() if s.replicas is not None and s.failover.enabled}


def continuity_window(spec: Spec) -> Callable[[str], float]:
    """For the fleet record: how old an entry's last confirmation may be for its duration to go on.
    "service@host": that service's failover.after; a host: the smallest failover.after of the movable
    services it may run (the strictest proof wins: failover is delayed, never hastened)."""
    services = movable(spec)
    smallest = min((s.failover.after for s in services.values()), default=0.0)
    per_host = {
        name: min((s.failover.after for p in host.plays for s in p.services if s.name in services), default=smallest)
        for name, host in spec.hosts.items()
    }

    def window(name: str) -> float:
        service, at, host = name.rpartition("@")
        if at:
            return services[service].failover.after if service in services else smallest
        return per_host.get(host, smallest)

    return window


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


# Agents asked, at most, before a service's witness counts as unavailable (each has its own timeout).
WITNESSES = 3


@dataclass(frozen=True, slots=True)
class ConsulView:
    """What Consul said about the unreachable hosts' instances."""

    passing: frozenset[tuple[str, str]] = frozenset()  # (service, host): still passing: not moved
    unknown: frozenset[tuple[str, str]] = frozenset()  # no agent could answer: not moved either


async def passing_in_consul(
    spec: Spec, observed: Mapping[str, ObservedHost], transports: Mapping[str, Transport], unreachable: set[str]
) -> ConsulView:
    """Ask reachable hosts' agents (up to WITNESSES, in name order, until one answers) whether the
    unreachable hosts' instances pass. Consul degraded (timeouts, TLS errors, 5xx, a refused token)
    is exactly when moving would be wrong, so a service no agent answers for is `unknown`, not moved.
    Where no reachable host runs or carries Consul at all there is no witness to ask, and nothing waits."""
    if not unreachable:
        return ConsulView()
    usable = [h for h, o in sorted(observed.items()) if h in transports and o.reachable and not o.error]
    agents = [h for h in usable if observed[h].consul_agent]
    consul_here = bool(agents) or any(observed[h].consul_binary for h in usable)
    passing: set[tuple[str, str]] = set()
    unknown: set[tuple[str, str]] = set()
    for service in movable(spec).values():
        if service.consul is None or not service.consul.enabled or not consul_here:
            continue
        mine = {(service.name, h) for h in unreachable}
        ids = await _ask_witnesses(agents[:WITNESSES], transports, service.consul.name or service.name)
        if ids is None:
            unknown |= mine
        else:
            passing.update((service.name, h) for h in unreachable if service_id(service.name, h) in ids)
    return ConsulView(frozenset(passing), frozenset(unknown))


async def _ask_witnesses(witnesses: list[str], transports: Mapping[str, Transport], name: str) -> set[str] | None:
    """The passing IDs of `name` from the first witness that answers; None when none could."""
    for witness in witnesses:
        try:
            return await consul_client.passing_ids(transports[witness], name)
        except (PushorchError, OSError, TimeoutError, ValueError):
            continue
    return None

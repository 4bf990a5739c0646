"""`pushorch status`: service x host — version, state, health, Consul, drift — from one probe per host."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import asdict, dataclass, replace

from pushorch.actions import Action, RemoveContainer, ReplaceContainer, RestartContainer, StopContainer, WriteConsul
from pushorch.commands import haproxy
from pushorch.connection import ConnectionSettings
from pushorch.consul import client as consul_client
from pushorch.consul import commands as consul_cmd
from pushorch.converge import connected, observe_all
from pushorch.errors import PushorchError
from pushorch.execute.health import instance_health
from pushorch.fanout import DEFAULT_FORKS
from pushorch.observed import ObservedContainer, ObservedHost
from pushorch.planner import Options, plan
from pushorch.planner.ingress import edge_hosts, routed
from pushorch.spec import Service, Spec
from pushorch.transport import Transport


@dataclass(frozen=True, slots=True)
class Row:
    service: str
    host: str
    version: str
    state: str
    health: str
    consul: str
    drift: str
    ingress: str = "-"  # the instance's state in each ingress: "edge-1 UP, edge-2 DRAIN"

    def to_json(self) -> dict[str, str]:
        data = asdict(self)
        if self.ingress == "-":  # a service no ingress routes: the row as it always was
            del data["ingress"]
        return data


async def status(
    spec: Spec, settings: Mapping[str, ConnectionSettings], forks: int = DEFAULT_FORKS
) -> tuple[list[Row], dict[str, str]]:
    """Rows for every service on every host that should or does run it; host -> error for the rest."""
    async with connected(settings, forks) as (transports, unreachable, _):
        observed = await observe_all(spec, transports)
        unreachable.update({h: o.error or "unreachable" for h, o in observed.items() if o.error})
        planned = plan(spec, observed, Options())
        steps, placed = planned.by_host(rollouts=True), planned.placed
        maintenance = await _maintenance(spec, observed, transports)
        proxies = await _ingress_states(spec, observed, transports)
        jobs = []
        for name, host in spec.hosts.items():
            seen = observed.get(name)
            if seen is None or seen.error:
                continue
            for play in host.plays:
                for service in play.services:
                    running_here = bool(seen.containers_of(service.name))
                    if name in placed.get(service.name, []) or running_here:
                        drift = _drift(service.name, steps.get(name, []), name in placed.get(service.name, []))
                        if drift == "in sync" and service.name in seen.holds:
                            drift = f"held on {seen.holds[service.name][1]} (rollback --hold)"
                        row = _row(service, name, seen, transports[name], drift, maintenance.get(name, {}))
                        jobs.append(_with_ingress(row, service, proxies))
        return list(await asyncio.gather(*jobs)), unreachable


async def _maintenance(
    spec: Spec, observed: Mapping[str, ObservedHost], transports: Mapping[str, Transport]
) -> dict[str, dict[str, str]]:
    """host -> {service id: reason} for instances in Consul maintenance mode (one agent call per host
    that runs an agent and a service registered in Consul)."""
    hosts = [
        h
        for h, host in spec.hosts.items()
        if (o := observed.get(h)) is not None
        and o.consul_agent
        and not o.error
        and h in transports
        and any(s.consul and s.consul.enabled for p in host.plays for s in p.services)
    ]

    async def one(host: str) -> dict[str, str]:
        try:
            return await consul_client.maintenance_reasons(transports[host])
        except (OSError, TimeoutError):
            return {}

    return dict(zip(hosts, await asyncio.gather(*(one(h) for h in hosts)), strict=True))


async def _ingress_states(
    spec: Spec, observed: Mapping[str, ObservedHost], transports: Mapping[str, Transport]
) -> dict[str, dict[tuple[str, str], str]]:
    """edge -> {(backend, server): UP | DOWN | DRAIN | MAINT ...} from each ingress's `show stat`
    (one command per ingress host; "unknown" for all of an ingress that does not answer)."""
    if not routed(spec):
        return {}
    edges = [h for h in edge_hosts(spec) if h in transports and not (observed.get(h) or ObservedHost(h)).error]

    async def one(edge: str) -> dict[tuple[str, str], str]:
        try:
            result = await transports[edge].run(haproxy.show_stat(), timeout=30)
        except (PushorchError, OSError, TimeoutError):
            return {}
        return haproxy.parse_stat(result.stdout) if result.ok else {}

    return dict(zip(edges, await asyncio.gather(*(one(e) for e in edges)), strict=True))


async def _with_ingress(row: Awaitable[Row], service: Service, proxies: dict[str, dict[tuple[str, str], str]]) -> Row:
    done = await row
    if service.ingress is None or not proxies:
        return done
    key = (haproxy.backend(service.name), done.host)
    states = [f"{edge} {servers.get(key, 'unknown' if not servers else 'absent')}" for edge, servers in proxies.items()]
    return replace(done, ingress=", ".join(states))


async def _row(
    service: Service, host: str, seen: ObservedHost, transport: Transport, drift: str, maintenance: dict[str, str]
) -> Row:
    containers = seen.containers_of(service.name)
    current = next((c for c in containers if c.running), containers[0] if containers else None)
    state = current.state if current else "missing"
    health = await _health(service, host, transport, current) if current and current.running else "-"
    return Row(
        service=service.name,
        host=host,
        version=current.version if current else "-",
        state=state,
        health=health,
        consul=_consul(service, host, seen, maintenance),
        drift=drift,
    )


async def _health(service: Service, host: str, transport: Transport, container: ObservedContainer) -> str:
    """One probe of the service's health check, as its gate makes it (through the SSH connection)."""
    if service.health is None:
        return container.health or "-"
    reading = await instance_health(service, host, transport, container)
    return "healthy" if reading.healthy else f"unhealthy ({reading.status})"


def _consul(service: Service, host: str, seen: ObservedHost, maintenance: dict[str, str]) -> str:
    if service.consul is None or not service.consul.enabled:
        return "-"
    reason = maintenance.get(consul_cmd.service_id(service.name, host))
    if reason is not None:
        return f"maintenance ({reason})" if reason else "maintenance"
    observed = seen.files.get(consul_cmd.definition_path(service.consul, service.name))
    return "registered" if observed is not None and observed.exists else "not registered"


def _drift(service: str, steps: list[Action], placed_here: bool) -> str:
    """The first step the plan has for this service on this host, as `verb: reason`."""
    for step in steps:
        if isinstance(step, WriteConsul) and step.service == service:
            return f"consul: {step.reason}"
        if (
            isinstance(step, (RestartContainer, StopContainer, RemoveContainer, ReplaceContainer))
            and step.service == service
        ):
            return f"{step.shown_verb}: {step.reason}"
    return "in sync" if placed_here else "not placed here"

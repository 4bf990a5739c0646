"""The ingress (pure): which hosts run the proxy, the routes this plan places behind it, and the
steps that install and configure it on an ingress host.

The backends are what placement chose: every host that runs the service after this plan, at the
host port its instance publishes. A route changes only when placement does (a failover, a new host);
a rollout moves each host's server through drain and ready instead (execute/edges.py). A port Docker
chose (start-first) is the running instance's, as observed; the step that replaces it names the new
one in that host's server file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from pushorch.actions import Action, ConfigureIngress, IngressTarget, InstallIngress, ReplaceContainer
from pushorch.commands import haproxy, haproxy_config
from pushorch.observed import ObservedFile, ObservedHost
from pushorch.spec import HostSpec, IngressProxy, Service, Spec, UpdatePolicy


def proxy_of(host: HostSpec) -> IngressProxy | None:
    return next((p.ingress for p in host.plays if p.ingress is not None), None)


def edge_hosts(spec: Spec) -> tuple[str, ...]:
    """The run's ingress hosts (a play with `ingress:` targets them), in inventory order."""
    return tuple(name for name, host in spec.hosts.items() if proxy_of(host) is not None)


def edges_for(spec: Spec, service: Service) -> tuple[str, ...]:
    """The ingress hosts a rollout of `service` drains and readies it on (none without `ingress:`).
    An unreachable one too: its step fails before stopping anything, as that ingress may still send
    requests to the instance (--limit leaves it out, for a rollout that goes on without it)."""
    return edge_hosts(spec) if service.ingress is not None else ()


def routed(spec: Spec) -> dict[str, Service]:
    """Every service with `ingress:` (as the first host that runs it renders it)."""
    out: dict[str, Service] = {}
    for host in [*spec.hosts.values(), *spec.outside.values()]:
        for play in host.plays:
            for service in play.services:
                if service.ingress is not None:
                    out.setdefault(service.name, service)
    return out


def owners(spec: Spec) -> dict[str, str]:
    """Each routed service's owner: the playbook that declares it (load/owner.py)."""
    out: dict[str, str] = {}
    for host in [*spec.hosts.values(), *spec.outside.values()]:
        for _, service, source in host.declared():
            if service.ingress is not None and source:
                out.setdefault(service.name, source)
    return out


def fixed_port(service: Service, policy: UpdatePolicy) -> int:
    """The host port the ingress reaches the service at; 0 when Docker chooses it (start-first, or a
    port published without a host port)."""
    container = container_port(service)
    if policy.order == "start-first":
        return 0
    return next((p.host for p in service.ports if p.container == container and p.host is not None), 0)


def container_port(service: Service) -> int:
    assert service.ingress is not None
    return service.ingress.port or next(p.container for p in service.ports if p.protocol == "tcp")


def _address(spec: Spec, host: str) -> str:
    every = {**spec.outside, **spec.hosts}
    return str(every[host].vars.get("ansible_host", host)) if host in every else host


def _interval(spec: Spec) -> str:
    proxy = next((p for h in spec.hosts.values() if (p := proxy_of(h)) is not None), None)
    return haproxy_config.interval(proxy.check_interval if proxy else 1.0)


def ingress_target(spec: Spec, service: Service, step: ReplaceContainer) -> IngressTarget | None:
    """Where the ingress hosts reach the step's instance (None: the service has no route)."""
    edges = edges_for(spec, service)
    if not edges:
        return None
    return IngressTarget(edges, _address(spec, step.host), container_port(service), _interval(spec))


def _ports(service: Service, seen: ObservedHost | None, fixed: int) -> list[int]:
    """The host ports the host's gated, running instances of the service publish: a Docker-chosen port
    is known only this way, and a fixed one may not be the running instance's yet (a change of
    `update.order`). An ungated instance is its step's to route once it passes. A host this run cannot
    see keeps the fixed port's server: it may well still serve."""
    if seen is None or seen.error or not seen.reachable:
        return [fixed] if fixed else []
    key = f"{container_port(service)}/tcp"
    out = []
    for c in seen.containers:
        published = c.ports.get(key, "").rpartition(":")[2]
        if c.service == service.name and c.running and c.name not in seen.ungated and published.isdigit():
            out.append(int(published))
    return sorted(set(out))


def routes(
    spec: Spec,
    placement: Mapping[str, Sequence[str]],
    observed: Mapping[str, ObservedHost] | None = None,
) -> list[haproxy.Route]:
    out = []
    observed = observed or {}
    owner = owners(spec)
    for name, service in routed(spec).items():
        ingress = service.ingress
        assert ingress is not None
        hosts = tuple(h for h in placement.get(name, ()) if h in spec.hosts or h in spec.outside)
        fixed = fixed_port(service, _policy(spec, service))
        servers = tuple(
            haproxy.Server(h, _address(spec, h), port)
            for h in hosts
            for port in _ports(service, observed.get(h), fixed)
        )
        check = ""
        if service.health is not None and service.health.http is not None:
            # HAProxy checks the published port: the host port, the service's own path.
            check = service.health.http.path
        out.append(
            haproxy.Route(
                name,
                tuple(ingress.hosts),
                ingress.path,
                ingress.balance,
                ingress.hash_key,
                check,
                servers,
                hosts,
                ingress.maintenance_page,
                hashlib.sha256(ingress.tls.certificate.reveal().encode()).hexdigest() if ingress.tls else "",
                haproxy_config.owner_mark(owner[name]) if name in owner else "",
            )
        )
    return out


def _policy(spec: Spec, service: Service) -> UpdatePolicy:
    for host in [*spec.hosts.values(), *spec.outside.values()]:
        for play in host.plays:
            for declared in play.services:
                if declared.name == service.name:
                    return play.policy_for(declared)
    return UpdatePolicy()


def ingress_actions(
    host: HostSpec,
    seen: ObservedHost,
    spec: Spec,
    placement: Mapping[str, Sequence[str]],
    observed: Mapping[str, ObservedHost] | None = None,
    prune: Sequence[str] = (),
) -> list[Action]:
    """HAProxy installed where missing; its configuration written when it differs or it is not running.
    `prune` (the run's playbooks, with --prune): the routes those playbooks made and no longer declare go."""
    proxy = proxy_of(host)
    if proxy is None:
        return []
    out: list[Action] = []
    installed = all(seen.files.get(p) is not None for p in (haproxy.BINARY, haproxy.SOCAT))
    if not installed:
        why = "the ingress proxy is not installed"
        out.append(InstallIngress(host.name, why, package_manager=seen.package_manager, packages=tuple(proxy.packages)))
    mine = routes(spec, placement, observed)
    written = haproxy_config.fragments(mine, proxy.http_port, proxy.https_port, proxy.check_interval)
    differs = [
        name
        for name, content in written.items()
        if (seen.files.get(f"{haproxy.FRAGMENTS}/{name}") or ObservedFile("", False)).sha256
        != hashlib.sha256(content.encode()).hexdigest()
    ]
    # A host the service left (a failover, fewer replicas): its server file goes.
    differs += sorted(
        name
        for path, found in seen.files.items()
        if found.exists
        and (name := path.removeprefix(f"{haproxy.FRAGMENTS}/")) != path
        and name.endswith(".servers")
        and name.partition("@")[0] in {r.service for r in mine}
        and name not in written
    )
    pruned = _pruned(seen, {r.service for r in mine}, prune)
    differs += [f"{name} no longer declared (--prune)" for name in pruned]
    why = f"its configuration differs ({', '.join(differs)})" if differs else ""
    if not differs and not seen.ingress_running:
        why = "the proxy is not running"
    if why or not installed:
        services = tuple(r.service for r in mine)
        certificates = tuple(
            (haproxy.certificate_path(name), service.ingress.tls.bundle())
            for name, service in routed(spec).items()
            if service.ingress is not None and service.ingress.tls is not None
        )
        out.append(
            ConfigureIngress(
                host.name,
                why or "just installed",
                fragments=tuple(written.items()),
                systemd=seen.systemd,
                services=services,
                certificates=certificates,
                pruned=pruned,
            )
        )
    return out


def _pruned(seen: ObservedHost, routed_here: set[str], prune: Sequence[str]) -> tuple[str, ...]:
    """Services whose owner mark on the ingress host names one of the run's playbooks, which no longer
    route them: `--prune` takes them out. Nothing another playbook (or no playbook) made is touched."""
    marks = {haproxy_config.owner_mark(p) for p in prune}
    out = []
    for path in sorted(seen.files):
        name = path.removeprefix(f"{haproxy.FRAGMENTS}/")
        service, dot_owner, mark = name.partition(".owner-")
        if name != path and dot_owner and mark in marks and service not in routed_here and seen.files[path].exists:
            out.append(service)
    return tuple(dict.fromkeys(out))

"""The ingress (pure): which hosts run the proxy, the routes this plan places behind it, and the
steps that install and configure it on an ingress host.

The backends are what placement chose: every host that runs the service after this plan, at the
host port its instance publishes. A route changes only when placement does (a failover, a new host);
a rollout keeps each host's server and moves it through drain and ready instead (execute/edges.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence

from pushorch.actions import Action, ConfigureIngress, InstallIngress
from pushorch.commands import haproxy, haproxy_config
from pushorch.observed import ObservedFile, ObservedHost
from pushorch.spec import HostSpec, IngressProxy, Service, Spec


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


def routes(spec: Spec, placement: Mapping[str, Sequence[str]]) -> list[haproxy.Route]:
    out = []
    every = {**spec.outside, **spec.hosts}
    for name, service in routed(spec).items():
        ingress = service.ingress
        assert ingress is not None
        port = ingress.port or next(p.container for p in service.ports if p.host is not None)
        host_port = next(p.host for p in service.ports if p.container == port and p.host is not None)
        servers = tuple(
            haproxy.Server(h, str(every[h].vars.get("ansible_host", h)), host_port)
            for h in placement.get(name, ())
            if h in every
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
                ingress.maintenance_page,
                hashlib.sha256(ingress.tls.certificate.reveal().encode()).hexdigest() if ingress.tls else "",
            )
        )
    return out


def ingress_actions(
    host: HostSpec, seen: ObservedHost, spec: Spec, placement: Mapping[str, Sequence[str]]
) -> list[Action]:
    """HAProxy installed where missing; its configuration written when it differs or it is not running."""
    proxy = proxy_of(host)
    if proxy is None:
        return []
    out: list[Action] = []
    installed = all(seen.files.get(p) is not None for p in (haproxy.BINARY, haproxy.SOCAT))
    if not installed:
        why = "the ingress proxy is not installed"
        out.append(InstallIngress(host.name, why, package_manager=seen.package_manager, packages=tuple(proxy.packages)))
    mine = routes(spec, placement)
    written = haproxy_config.fragments(mine, proxy.http_port, proxy.https_port, proxy.check_interval)
    differs = [
        name
        for name, content in written.items()
        if (seen.files.get(f"{haproxy.FRAGMENTS}/{name}") or ObservedFile("", False)).sha256
        != hashlib.sha256(content.encode()).hexdigest()
    ]
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
        configure = ConfigureIngress(host.name, why or "just installed", systemd=seen.systemd, services=services)
        out.append(dataclasses.replace(configure, fragments=tuple(written.items()), certificates=certificates))
    return out

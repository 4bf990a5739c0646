"""Observe: one read-only probe round trip per host, parsed by the pure facts module."""

from __future__ import annotations

from pushorch.commands.probe import probe
from pushorch.errors import BecomeFailed, CommandTimeout, TransportError
from pushorch.facts import parse_probe, unreachable
from pushorch.observed import ObservedHost
from pushorch.planner import needs_docker, probe_images, probe_paths
from pushorch.spec import HostSpec
from pushorch.transport import Transport


async def observe(host: HostSpec, transport: Transport) -> ObservedHost:
    try:
        argv = probe(probe_paths(host), probe_images(host), docker=needs_docker(host))
        result = await transport.run(argv, timeout=120)
    except (BecomeFailed, CommandTimeout) as exc:
        return ObservedHost(host.name, reachable=True, error=str(exc))  # it answered, but cannot be probed
    except TransportError as exc:
        return unreachable(host.name, str(exc))
    return parse_probe(host.name, result.stdout)

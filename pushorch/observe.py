"""Observe: one read-only probe round trip per host, parsed by the pure facts module."""

from __future__ import annotations

from pushorch.commands.probe import for_host
from pushorch.errors import BecomeFailed, CommandTimeout, TransportError
from pushorch.facts import parse_probe, unreachable
from pushorch.observed import ObservedHost
from pushorch.spec import HostSpec
from pushorch.transport import Transport


async def observe(host: HostSpec, transport: Transport) -> ObservedHost:
    try:
        result = await transport.run(for_host(host), timeout=120)
    except (BecomeFailed, CommandTimeout) as exc:
        return ObservedHost(host.name, reachable=True, error=str(exc))  # it answered, but cannot be probed
    except TransportError as exc:
        return unreachable(host.name, str(exc))
    return parse_probe(host.name, result.stdout)

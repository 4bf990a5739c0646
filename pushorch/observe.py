"""Observe: one read-only probe round trip per host, parsed by the pure facts module; and the KV
store's keys the plan compares, through one host's Consul agent."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from pushorch.commands.probe import for_host
from pushorch.consul import client as consul_client
from pushorch.errors import BecomeFailed, CommandTimeout, PushorchError, TransportError
from pushorch.facts import parse_probe, unreachable
from pushorch.observed import ObservedHost, ObservedKey
from pushorch.planner import kv
from pushorch.spec import HostSpec, Spec
from pushorch.transport import Transport


async def observe(host: HostSpec, transport: Transport) -> ObservedHost:
    try:
        result = await transport.run(for_host(host), timeout=120)
    except (BecomeFailed, CommandTimeout) as exc:
        return ObservedHost(host.name, reachable=True, error=str(exc))  # it answered, but cannot be probed
    except TransportError as exc:
        return unreachable(host.name, str(exc))
    return parse_probe(host.name, result.stdout)


async def observe_maintenance(
    spec: Spec, observed: dict[str, ObservedHost], transports: Mapping[str, Transport]
) -> None:
    """The agent's maintenance modes, on the hosts with a `drain: maintenance` service (one agent call
    each): the plan ends the ones an interrupted rollout left and keeps the ones set by hand."""

    async def one(host: str) -> None:
        try:
            reasons = await consul_client.maintenance_reasons(transports[host])
        except (OSError, TimeoutError, PushorchError):
            return  # the agent did not answer: the next run decides again
        observed[host] = replace(observed[host], maintenance=reasons)

    draining = [
        name
        for name, host in spec.hosts.items()
        if name in transports
        and observed.get(name) is not None
        and not observed[name].error
        and observed[name].consul_agent
        and any(
            p.policy_for(s).drain == "maintenance" and s.consul is not None and s.consul.enabled
            for p in host.plays
            for s in p.services
        )
    ]
    await asyncio.gather(*(one(h) for h in draining))


async def observe_kv(
    spec: Spec, observed: dict[str, ObservedHost], transports: Mapping[str, Transport], prune: bool
) -> None:
    """Read what the plan compares in Consul's KV store, through one host's agent (the KV writer):
    pushorch's manifests, then every declared or listed key, concurrently. Nothing is read when no
    service declares `consul.kv` and nothing is being pruned."""
    if not kv.declared(spec) and not prune:
        return
    host = kv.writer({h: o for h, o in observed.items() if h in transports})
    if host is None:
        return
    transport = transports[host]
    try:
        manifests = {
            e.key.removeprefix(kv.MANIFEST_PREFIX): ObservedKey(e.value, e.flags, e.modify_index)
            for e in await consul_client.kv_list(transport, kv.MANIFEST_PREFIX)
        }
        keys = kv.keys_to_read(spec, manifests)
        entries = await asyncio.gather(*(consul_client.kv_get(transport, k) for k in keys))
    except (OSError, TimeoutError):
        return  # the agent did not answer: no KV steps this run (the next run decides again)
    found = {
        k: ObservedKey(e.value, e.flags, e.modify_index) if e else None for k, e in zip(keys, entries, strict=True)
    }
    observed[host] = replace(observed[host], kv=found, kv_manifests=manifests)

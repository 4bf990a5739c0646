"""`pushorch maintenance enable|disable`: take a service's instances out of Consul (the agent's
maintenance mode: listed, critical, so clients leave them) and back, without stopping them."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import host_options
from pushorch.cli.compose_opts import playbooks_and_service
from pushorch.errors import ExitStatus


@click.command()
@host_options
@click.option("--reason", default="", help="Shown by Consul and `pushorch status` (default: who and when).")
@click.argument("mode", type=click.Choice(["enable", "disable"]))
@playbooks_and_service
def maintenance(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    reason: str,
    mode: str,
    args: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Put SERVICE's instances in (enable) or out of (disable) Consul maintenance mode, host by host,
    and, behind the ingress, every ingress answering its maintenance page (or sending it requests again)."""
    from datetime import UTC, datetime

    from pushorch.cli.converge_cmds import _service_command, placed_on_some, service_hosts
    from pushorch.consul import client as consul_client
    from pushorch.consul import commands as consul_cmd
    from pushorch.converge import connected
    from pushorch.execute import edges as ingress
    from pushorch.fleet.lock import owner_record
    from pushorch.planner.ingress import edges_for, routed
    from pushorch.report import LogPrinter, warn_line

    spec, settings, _, _, service = _service_command(
        inventories, args, extra_vars, limit, connection, None, 0.0, "put in maintenance"
    )
    hosts = service_hosts(spec, service, args[-2])
    declared = next(s for h in hosts for p in spec.hosts[h].plays for s in p.services if s.name == service)
    in_consul = declared.consul is not None and declared.consul.enabled
    edges = list(edges_for(spec, declared)) if service in routed(spec) else []
    # Where the agent does not know a `replicas` service's instance there is nothing to put in
    # maintenance, and that is no failure.
    subset = placed_on_some(spec, service)
    skipped: list[str] = []
    if not reason and mode == "enable":
        owner = owner_record(0)
        reason = f"pushorch: {owner['user']}@{owner['controller']} at {datetime.now(UTC).isoformat(timespec='seconds')}"
    printer = LogPrinter(hosts + edges)
    failed: dict[str, str] = {}

    async def main() -> dict[str, str]:
        wanted = (hosts if in_consul else []) + edges
        async with connected({h: settings[h] for h in wanted}, forks) as (transports, unreachable, _):

            async def one(host: str) -> None:
                try:
                    await consul_client.maintenance(
                        transports[host], consul_cmd.service_id(service, host), mode == "enable", reason
                    )
                    printer.line(host, f"{service}: maintenance {'on' if mode == 'enable' else 'off'}")
                except consul_client.ConsulNotFound as exc:
                    if not subset:
                        failed[host] = str(exc)
                        return
                    skipped.append(host)
                    printer.line(host, f"{service}: does not run here (replicas): skipped")
                except Exception as exc:  # an agent that refuses or does not answer
                    failed[host] = str(exc)

            await asyncio.gather(*(one(h) for h in transports if h not in edges))
            told = {e: t for e, t in transports.items() if e in edges}
            failed.update(await ingress.maintenance(service, mode == "enable", told))
            now = "answers its maintenance page" if mode == "enable" else "sends it requests"
            for edge in told:
                if edge not in failed:
                    printer.line(edge, f"{service}: the ingress {now}")
        return dict(unreachable)

    unreachable = asyncio.run(main())
    for host, error in sorted({**unreachable, **failed}.items()):
        warn_line(f"{host}: {'UNREACHABLE' if host in unreachable else 'FAILED'}: {error}")
    if unreachable:
        return ExitStatus.UNREACHABLE
    if not failed and hosts and sorted(skipped) == sorted(hosts):
        warn_line(f"{service}: no host runs it: nothing was put in or out of maintenance")
        return ExitStatus.APPLY_FAILED
    return ExitStatus.APPLY_FAILED if failed else ExitStatus.OK

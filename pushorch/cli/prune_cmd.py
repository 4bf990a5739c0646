"""`pushorch prune`: remove what managed services no longer need on their hosts (stopped containers
beyond `update.keep`, unused images beyond `update.keep_images`); never anything pushorch did not create."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import host_options, lock_options
from pushorch.cli.compose_opts import compose_options
from pushorch.errors import ExitStatus


@click.command()
@host_options
@click.option("--dry-run", is_flag=True, help="Only list what would be removed (exactly what a run removes).")
@lock_options
@compose_options
@click.argument("playbooks", nargs=-1, required=True, type=click.Path())
def prune(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    dry_run: bool,
    playbooks: tuple[str, ...],
    forks: int,
    lock_file: str | None,
    lock_wait: float,
    lock_ttl: int | None,
    **connection: Any,
) -> int:
    """Remove the stopped containers and unused images of the playbooks' services, host by host."""
    from pushorch.cli.prepare import local_lock, prepare_locked
    from pushorch.commands import docker as docker_cmd
    from pushorch.commands import service_scripts
    from pushorch.converge import connected, take_fleet_lock
    from pushorch.planner.config import config_files, digests
    from pushorch.report import LogPrinter, warn_line
    from pushorch.spec import HostSpec

    spec, settings, _, locking = prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )

    def argv(host: HostSpec) -> tuple[str, ...]:
        """One script per host, every service in it: a dry run then lists what the whole run removes."""
        services, repositories = [], []
        for play in host.plays:
            for service in play.services:
                policy = play.policy_for(service)
                digest = docker_cmd.spec_hash(service, digests(config_files(host, service)))
                services.append((service.name, policy.keep, docker_cmd.container_name(service.name, digest)))
                repositories.append((docker_cmd.repository(service.image), policy.keep_images))
        return service_scripts.prune(services, repositories, dry_run)

    work = {name: [argv(host)] for name, host in spec.hosts.items() if any(p.services for p in host.plays)}
    printer = LogPrinter(list(work))
    failed: dict[str, str] = {}

    async def main() -> dict[str, str]:
        async with connected(settings, forks) as (transports, unreachable, shared):
            fleet = None if dry_run else await take_fleet_lock(locking, transports, shared, lambda _: None)
            try:
                await asyncio.gather(*(one(t, h) for h, t in transports.items()))
            finally:
                if fleet is not None:
                    await fleet.release()
        return dict(unreachable)

    async def one(transport: Any, host: str) -> None:
        for argv in work.get(host, []):
            done = await transport.run(argv, timeout=300)
            for line in done.stdout.splitlines():
                printer.line(host, line)
            if not done.ok:
                failed[host] = done.stderr.strip() or f"exit {done.exit_status}"
                return

    with local_lock(lock_file, locking, skip=dry_run):
        unreachable = asyncio.run(main())
    for host, error in sorted({**unreachable, **failed}.items()):
        warn_line(f"{host}: {'UNREACHABLE' if host in unreachable else 'FAILED'}: {error}")
    if unreachable:
        return ExitStatus.UNREACHABLE
    return ExitStatus.APPLY_FAILED if failed else ExitStatus.OK

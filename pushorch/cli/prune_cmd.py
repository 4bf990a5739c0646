"""`pushorch prune`: remove what managed services no longer need on their hosts (stopped containers
beyond `update.keep`, unused images beyond `update.keep_images`); never anything pushorch did not create."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import host_options, lock_options
from pushorch.errors import ExitStatus


@click.command()
@host_options
@click.option("--dry-run", is_flag=True, help="Only list what would be removed (exactly what a run removes).")
@lock_options
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
    from pushorch.report import LogPrinter, warn_line

    spec, settings, _, locking = prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )

    def argv(play: Any, service: Any) -> tuple[str, ...]:
        policy = play.policy_for(service)
        repository = docker_cmd.repository(service.image)
        return service_scripts.prune(service.name, policy.keep, repository, policy.keep_images, dry_run)

    work = {host: [argv(p, s) for p in h.plays for s in p.services] for host, h in spec.hosts.items()}
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

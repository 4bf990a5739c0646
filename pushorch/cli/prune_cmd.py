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
    import contextlib
    from pathlib import Path

    from pushorch.cli.converge_cmds import _prepare_locked
    from pushorch.commands import docker as docker_cmd
    from pushorch.converge import connect_all, take_fleet_lock
    from pushorch.fanout import close_shared
    from pushorch.lock import LocalLock, default_lock_file
    from pushorch.report import LogPrinter, warn_line

    spec, settings, _, locking = _prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )
    work = {
        host: [
            docker_cmd.prune(
                s.name, p.policy_for(s).keep, docker_cmd.repository(s.image), p.policy_for(s).keep_images, dry_run
            )
            for p in spec_host.plays
            for s in p.services
        ]
        for host, spec_host in spec.hosts.items()
    }
    printer = LogPrinter(list(work))
    failed: dict[str, str] = {}

    async def main() -> dict[str, str]:
        shared: dict[str, Any] = {}
        transports, unreachable = await connect_all(settings, forks, shared)
        fleet = None
        try:
            if not dry_run:
                fleet = await take_fleet_lock(locking, transports, shared, lambda _: None)

            async def one(host: str) -> None:
                for argv in work[host]:
                    done = await transports[host].run(argv, timeout=300)
                    for line in done.stdout.splitlines():
                        printer.line(host, line)
                    if not done.ok:
                        failed[host] = done.stderr.strip() or f"exit {done.exit_status}"
                        return

            await asyncio.gather(*(one(h) for h in transports))
        finally:
            if fleet is not None:
                await fleet.release()
            await asyncio.gather(*(t.close() for t in transports.values()), return_exceptions=True)
            await close_shared(shared)
        return unreachable

    local = LocalLock(Path(lock_file) if lock_file else default_lock_file(), locking.wait)
    with contextlib.nullcontext() if dry_run else local:
        unreachable = asyncio.run(main())
    for host, error in sorted({**unreachable, **failed}.items()):
        warn_line(f"{host}: {'UNREACHABLE' if host in unreachable else 'FAILED'}: {error}")
    if unreachable:
        return ExitStatus.UNREACHABLE
    return ExitStatus.APPLY_FAILED if failed else ExitStatus.OK

"""`pushorch reconcile` (one converge under the locks, quiet for cron) and `pushorch lock status|release`."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import (
    connection_options,
    extra_vars_option,
    host_options,
    inventory_option,
    lock_options,
    tag_options,
)
from pushorch.cli.converge_cmds import playbooks_argument
from pushorch.cli.exec_cmd import host_settings
from pushorch.cli.prepare import converge_locked, exit_status, prepare_locked
from pushorch.errors import ExitStatus


@click.command()
@host_options
@lock_options
@click.option("--json", "as_json", is_flag=True, help="Events as JSON lines, then one summary object.")
@click.option("--log-file", metavar="PATH", help="Append every event and the summary, as JSON lines, to PATH.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 8 when the run had to change something.")
@tag_options
@playbooks_argument
def reconcile(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    log_file: str | None,
    detailed_exitcode: bool,
    playbooks: tuple[str, ...],
    forks: int,
    lock_file: str | None,
    lock_wait: float,
    lock_ttl: int | None,
    **connection: Any,
) -> int:
    """Converge the fleet once, for cron: failover included, locked, silent when nothing changed."""
    from pushorch.report import ReconcileReporter

    spec, settings, options, locking = prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )
    reporter = ReconcileReporter(as_json=as_json, log_file=log_file)
    outcome = converge_locked(
        lock_file, locking, spec=spec, settings=settings, options=options, forks=forks, emit=reporter.event
    )
    reporter.summary(outcome)
    return exit_status(outcome, bool(outcome.first_plan), detailed_exitcode)


@click.group()
def lock() -> None:
    """Show or break fleet locks (the lock directory on a lock host, or the Consul key)."""


def lock_backend(inventories: tuple[str, ...], extra_vars: tuple[str, ...]) -> tuple[str, str]:
    """(pushorch_lock_backend, pushorch_lock_name) as the inventory's `all` group and -e set them."""
    from pushorch.ansible.load_inventory import load_inventory
    from pushorch.cli.app import inventory_sources, load_context
    from pushorch.load.extravars import parse_extra_vars

    context = load_context()
    inventory = load_inventory(inventory_sources(inventories), context)
    extra, _ = parse_extra_vars(extra_vars, context)
    first = sorted(inventory.hosts)[0] if inventory.hosts else None
    from pushorch.cli.prepare import variable_problems
    from pushorch.errors import InputError
    from pushorch.variables import LOCK_VARIABLES, VariableError, typed

    try:
        variables = typed({**(inventory.host_vars(first) if first else {}), **extra}, LOCK_VARIABLES)
    except VariableError as exc:
        raise InputError(variable_problems(exc, inventory, str(first), extra_vars)) from None
    return str(variables.get("pushorch_lock_backend") or "mkdir"), str(variables.get("pushorch_lock_name") or "fleet")


def _consul_lock(settings: list[Any], forks: int, name: str, release: bool) -> int:
    """The Consul lock's holder (or break it), through the first host whose agent answers."""
    from pushorch.consul import lock as consul_lock
    from pushorch.converge import connected
    from pushorch.report import print_text

    async def ask() -> str | None:
        async with connected({s.name: s for s in settings}, forks) as (transports, _, _):
            for host in sorted(transports):
                try:
                    if release:
                        return f"{host}: {await consul_lock.break_lock(transports[host], name)}"
                    held = await consul_lock.status(transports[host], name)
                except (OSError, TimeoutError):
                    continue  # this host's agent does not answer: ask the next
                key = consul_lock.key_for(name)
                return f"consul {key} (via {host}): HELD by {held}" if held else "no fleet lock held"
        return None

    answer = asyncio.run(ask())
    if answer is None:
        print_text("no host's Consul agent answered")
        return ExitStatus.UNREACHABLE
    print_text(answer)
    return ExitStatus.OK


@lock.command(name="status")
@host_options
@click.argument("pattern", default="all")
def lock_status(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    pattern: str,
    forks: int,
    **connection: Any,
) -> int:
    """Which hosts matching PATTERN hold a fleet lock, who owns it and when it expires."""
    from pushorch.fanout import run_everywhere
    from pushorch.fleet import commands as lock_cmd
    from pushorch.fleet.lock import describe
    from pushorch.report import print_text

    settings = host_settings(inventories, pattern, limit, extra_vars, connection)
    backend, name = lock_backend(inventories, extra_vars)
    if backend == "consul":
        return _consul_lock(settings, forks, name, release=False)
    outcomes = asyncio.run(run_everywhere(settings, lock_cmd.status(), forks=forks))
    lines = []
    for outcome in outcomes:
        if outcome.result is None:
            lines.append(f"{outcome.host}: UNREACHABLE: {outcome.error}")
        elif outcome.result.stdout.startswith("HELD"):
            lines.append(f"{outcome.host}: HELD by {describe(outcome.result.stdout.partition(chr(10))[2])}")
    print_text("\n".join(lines) or "no fleet lock held")
    return ExitStatus.UNREACHABLE if any(o.result is None for o in outcomes) else ExitStatus.OK


@lock.command(name="release")
@inventory_option
@extra_vars_option
@connection_options
@click.argument("host")
def lock_release(
    inventories: tuple[str, ...], extra_vars: tuple[str, ...], host: str, forks: int, **connection: Any
) -> int:
    """Break the fleet lock on HOST, whoever holds it (see `lock status` first)."""
    from pushorch.fanout import run_everywhere
    from pushorch.fleet import commands as lock_cmd
    from pushorch.report import print_text

    settings = host_settings(inventories, host, None, extra_vars, connection)
    backend, name = lock_backend(inventories, extra_vars)
    if backend == "consul":
        return _consul_lock(settings, forks, name, release=True)
    outcomes = asyncio.run(run_everywhere(settings, lock_cmd.release(), forks=forks))
    for outcome in outcomes:
        print_text(
            f"{outcome.host}: " + (outcome.result.stdout.strip() if outcome.result else f"UNREACHABLE: {outcome.error}")
        )
    return ExitStatus.OK if all(o.result is not None and o.result.ok for o in outcomes) else ExitStatus.APPLY_FAILED

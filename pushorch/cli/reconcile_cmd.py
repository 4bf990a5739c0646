"""`pushorch reconcile` (one converge under the locks, quiet for cron) and `pushorch lock status|release`."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import connection_options, extra_vars_option, host_options, inventory_option, lock_options
from pushorch.cli.converge_cmds import _prepare_locked, _status, converge_locked, playbooks_argument
from pushorch.cli.exec_cmd import host_settings
from pushorch.errors import ExitStatus


@click.command()
@host_options
@lock_options
@click.option("--json", "as_json", is_flag=True, help="Events as JSON lines, then one summary object.")
@click.option("--log-file", metavar="PATH", help="Append every event and the summary, as JSON lines, to PATH.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 8 when the run had to change something.")
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

    spec, settings, options, locking = _prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )
    reporter = ReconcileReporter(as_json=as_json, log_file=log_file)
    outcome = converge_locked(
        lock_file, locking, spec=spec, settings=settings, options=options, forks=forks, emit=reporter.event
    )
    reporter.summary(outcome)
    return _status(outcome, bool(outcome.first_plan), detailed_exitcode)


@click.group()
def lock() -> None:
    """Show or break fleet locks (the lock directory on a lock host)."""


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
    from pushorch.commands import lock as lock_cmd
    from pushorch.fanout import run_everywhere
    from pushorch.lock import describe
    from pushorch.report import print_text

    settings = host_settings(inventories, pattern, limit, extra_vars, connection)
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
    from pushorch.commands import lock as lock_cmd
    from pushorch.fanout import run_everywhere
    from pushorch.report import print_text

    settings = host_settings(inventories, host, None, extra_vars, connection)
    outcomes = asyncio.run(run_everywhere(settings, lock_cmd.release(), forks=forks))
    for outcome in outcomes:
        print_text(
            f"{outcome.host}: " + (outcome.result.stdout.strip() if outcome.result else f"UNREACHABLE: {outcome.error}")
        )
    return ExitStatus.OK if all(o.result is not None and o.result.ok for o in outcomes) else ExitStatus.APPLY_FAILED

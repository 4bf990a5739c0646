"""`pushorch exec`: run one command on every matched host (like `ansible PATTERN -m shell -a`)."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import (
    host_options,
    inventory_sources,
    target_hosts,
    warn_unverified,
)
from pushorch.errors import ExitStatus, InputError, Problem


def host_settings(
    inventories: tuple[str, ...],
    pattern: str,
    limit: str | None,
    extra_vars: tuple[str, ...],
    connection: dict[str, Any],
) -> list[Any]:
    """Connection settings of the hosts matching pattern and --limit; warns when keys go unverified."""
    from pushorch.connection import Overrides, settings_for
    from pushorch.load.extravars import parse_extra_vars
    from pushorch.load.inventory import load_inventory

    inventory = load_inventory(inventory_sources(inventories))
    extra, problems = parse_extra_vars(extra_vars)
    hosts = target_hosts(inventory, pattern, limit)
    overrides = Overrides(**connection)
    settings = []
    for host in hosts:
        try:
            settings.append(settings_for(host, {**inventory.host_vars(host), **extra}, overrides))
        except ValueError as exc:
            problems.append(Problem(f"host {host}", 0, 0, "", str(exc)))
    if problems:
        raise InputError(problems)
    warn_unverified(settings)
    return settings


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@host_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per host per line.")
@click.argument("pattern")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(
    app: Any,
    /,
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    pattern: str,
    command: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Run COMMAND on every host matching PATTERN: `pushorch exec -i INV all -- uname -a`."""
    from pushorch.fanout import run_everywhere
    from pushorch.report import ExecReporter

    settings = host_settings(inventories, pattern, limit, extra_vars, connection)
    argv = command if len(command) > 1 else ("sh", "-c", command[0])
    reporter = ExecReporter(len(settings), as_json=as_json, verbosity=app.verbosity)
    with reporter:
        outcomes = asyncio.run(run_everywhere(settings, argv, forks=forks, on_done=reporter.host_done))
    reporter.recap(outcomes)
    if any(o.status == "unreachable" for o in outcomes):
        return ExitStatus.UNREACHABLE
    if any(o.status == "failed" for o in outcomes):
        return ExitStatus.APPLY_FAILED
    return ExitStatus.OK

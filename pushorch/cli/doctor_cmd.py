"""`pushorch doctor`: check the hosts before a run (SSH, become, Docker, disk, clock, Consul,
registries, ports): one row per host; exit 0 when nothing fails, 5 when a check does."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import host_options
from pushorch.cli.compose_opts import compose_options
from pushorch.errors import ExitStatus


@click.command()
@host_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document: every check of every host.")
@compose_options
@click.argument("playbooks", nargs=-1, type=click.Path())
def doctor(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    playbooks: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Check each host before a run: SSH, become, Docker, free space, clock skew and, with PLAYBOOKs,
    their Consul agent, registries and host ports."""
    from pushorch.cli.exec_cmd import host_settings
    from pushorch.cli.prepare import prepare_locked
    from pushorch.doctor import CHECKS
    from pushorch.doctor import doctor as collect
    from pushorch.report import print_json, print_table, warn_line

    if playbooks:
        spec, settings, _, locking = prepare_locked(inventories, playbooks, extra_vars, limit, connection, None, 0.0)
        reports = asyncio.run(collect(settings, spec, locking.pick(sorted(settings)), forks))
    else:
        found = host_settings(inventories, "all", limit, extra_vars, connection)
        reports = asyncio.run(collect({s.name: s for s in found}, None, None, forks))
    if as_json:
        print_json({"hosts": [r.to_json() for r in reports]}, indent=2)
    else:
        columns = [c for c in CHECKS if any(c in r.checks for r in reports)]
        label = {"ok": "ok", "warn": "warn", "fail": "FAIL", "-": "-"}
        print_table(
            ["host", *columns],
            [
                {"host": r.host, **{c: label[r.checks[c].status] if c in r.checks else "" for c in columns}}
                for r in reports
            ],
        )
        for report in reports:
            for name, check in report.checks.items():
                if check.status in ("warn", "fail"):
                    warn_line(f"{report.host}: {name}: {check.status.upper()}: {check.detail}")
    return ExitStatus.APPLY_FAILED if any(r.failed for r in reports) else ExitStatus.OK

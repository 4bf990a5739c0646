"""`pushorch history`: what changed where, when and by whom, read from every host and merged by time."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pushorch.cli.app import host_options
from pushorch.errors import ExitStatus


@click.command()
@host_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per change per line.")
@click.option("-n", "--last", type=click.IntRange(min=1), help="Only the last N changes.")
@click.argument("service", required=False)
def history(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    last: int | None,
    service: str | None,
    forks: int,
    **connection: Any,
) -> int:
    """Every service change made on the inventory's hosts (or SERVICE's), oldest first."""
    from pushorch.cli.exec_cmd import host_settings
    from pushorch.fanout import run_everywhere
    from pushorch.fleet import history as history_log
    from pushorch.report import print_json_lines, print_table, warn_line

    settings = host_settings(inventories, "all", limit, extra_vars, connection)
    outcomes = asyncio.run(run_everywhere(settings, history_log.read(), forks=forks))
    rows = [
        row
        for o in outcomes
        if o.result is not None
        for row in history_log.parse(o.host, o.result.stdout)
        if service is None or row["service"] == service
    ]
    rows.sort(key=lambda r: (r["time"], r["host"]))
    rows = rows[-last:] if last else rows
    if as_json:
        print_json_lines(rows)
    else:
        shown = [{**r, "change": f"{r['from'] or '-'} -> {r['to'] or '-'}"} for r in rows]
        print_table(["time", "host", "service", "action", "change", "result", "by", "command"], shown)
    unreachable = [o for o in outcomes if o.result is None]
    for outcome in unreachable:
        warn_line(f"{outcome.host}: UNREACHABLE: {outcome.error}")
    return ExitStatus.UNREACHABLE if unreachable else ExitStatus.OK

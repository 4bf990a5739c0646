"""`pushorch exec`: run one command on every matched host (like `ansible PATTERN -m shell -a`)."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import click

from pushorch.cli.app import (
    host_options,
    inventory_sources,
    load_context,
    make_overrides,
    missing_controller_files,
    target_hosts,
    warn_unverified,
)
from pushorch.cli.compose_opts import compose_options
from pushorch.errors import ExitStatus, InputError

if TYPE_CHECKING:
    from pushorch.fanout import HostOutcome


def host_settings(
    inventories: tuple[str, ...],
    pattern: str,
    limit: str | None,
    extra_vars: tuple[str, ...],
    connection: dict[str, Any],
) -> list[Any]:
    """Connection settings of the hosts matching pattern and --limit; warns when keys go unverified."""
    from pushorch.ansible.load_inventory import load_inventory
    from pushorch.cli.prepare import merge_hosts, variable_problems
    from pushorch.connection import settings_for
    from pushorch.load.extravars import parse_extra_vars

    context = load_context()
    inventory = load_inventory(inventory_sources(inventories), context)
    extra, problems = parse_extra_vars(extra_vars, context)
    hosts = target_hosts(inventory, pattern, limit)
    overrides = make_overrides(connection)
    settings = []
    for host in hosts:
        try:
            settings.append(settings_for(host, {**inventory.host_vars(host), **extra}, overrides))
        except ValueError as exc:
            problems.extend(variable_problems(exc, inventory, host, extra_vars))
    problems.extend(missing_controller_files(settings))
    if problems:
        raise InputError(merge_hosts(problems))
    warn_unverified(settings)
    return settings


def service_settings(
    inventories: tuple[str, ...],
    words: tuple[str, ...],
    service: str,
    limit: str | None,
    extra_vars: tuple[str, ...],
    connection: dict[str, Any],
) -> tuple[list[Any], tuple[str, ...], bool]:
    """`--service SVC PLAYBOOK... -- CMD...`: the leading words that are playbook files, then the command;
    the connection settings of the hosts whose plays declare SERVICE, and whether it runs on some of
    them only (`replicas`)."""
    from pushorch.cli.converge_cmds import placed_on_some, service_hosts
    from pushorch.cli.prepare import prepare

    playbooks = tuple(w for w in words[: _playbook_count(words)])
    command = words[len(playbooks) :]
    if not playbooks or not command:
        raise click.UsageError("--service: give the playbook(s), then -- and the command")
    spec, settings, _ = prepare(inventories, playbooks, extra_vars, limit, connection)
    hosts = service_hosts(spec, service, playbooks[0])
    return [settings[h] for h in hosts], command, placed_on_some(spec, service)


def _interactive(settings: Any, argv: tuple[str, ...]) -> int:
    """One host, one pseudo-terminal, the controller's terminal in raw mode until the command exits."""
    from pushorch.report.terminal import TtyTerminal
    from pushorch.transport import open_transport

    async def main() -> int:
        transport = open_transport(settings)
        await transport.connect()
        try:
            with TtyTerminal() as terminal:
                return await transport.interactive(argv, terminal)
        finally:
            await transport.close()

    return asyncio.run(main())


SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]#~=%{}!")


def _plain_word(word: str, service: str | None) -> bool:
    """In a service's container, one word with nothing for a shell to read (`env`, `/app/manage`) runs
    as it is: an image without `sh` runs it too. On a host, one word is a shell line (`ansible -a`)."""
    return service is not None and bool(word) and not any(c.isspace() or c in SHELL_SYNTAX for c in word)


def _playbook_count(words: tuple[str, ...]) -> int:
    count = 0
    for word in words:
        if not (word.endswith((".yml", ".yaml", ".json")) and os.path.isfile(word)):
            break
        count += 1
    return count


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@host_options
@compose_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per host per line.")
@click.option("--service", metavar="SERVICE", help="Run it in SERVICE's container (give playbooks, not a pattern).")
@click.option(
    "--interactive", is_flag=True, help="`-it`: on a terminal of the one matched host (a shell, say), keys and all."
)
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
    service: str | None,
    interactive: bool,
    pattern: str,
    command: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Run COMMAND on every host matching PATTERN: `pushorch exec -i INV all -- uname -a`; with
    --service, in that service's running container on each host of its plays:
    `pushorch exec -i INV --service web app.yml -- env`."""
    from dataclasses import replace

    from pushorch.commands import service_scripts
    from pushorch.fanout import run_everywhere
    from pushorch.report import ExecReporter, warn_line

    placed_subset = False
    if service is None:
        settings = host_settings(inventories, pattern, limit, extra_vars, connection)
    else:
        settings, command, placed_subset = service_settings(
            inventories, (pattern, *command), service, limit, extra_vars, connection
        )
    argv = command if len(command) > 1 or _plain_word(command[0], service) else ("sh", "-c", command[0])
    if service is not None:
        argv = service_scripts.exec_in_service(service, argv, tty=interactive)
    if interactive:
        if len(settings) != 1:
            hosts = ", ".join(s.name for s in settings) or "none"
            raise click.UsageError(f"-it runs on exactly one host (these match: {hosts}); narrow it with -l HOST")
        return _interactive(settings[0], argv)
    reporter = ExecReporter(len(settings), as_json=as_json, verbosity=app.verbosity)
    seen: list[HostOutcome] = []

    def done(outcome: HostOutcome) -> None:
        # A `replicas` service runs on some of its play's hosts: where it does not, there is nothing
        # to exec in, and that is no failure (where it runs, it is).
        if placed_subset and _not_running_here(outcome, service or ""):
            outcome = replace(outcome, status="skipped", error=f"{service} does not run here (replicas)")
        seen.append(outcome)
        reporter.host_done(outcome)

    with reporter:
        asyncio.run(run_everywhere(settings, argv, forks=forks, on_done=done))
    reporter.recap(seen)
    if any(o.status == "unreachable" for o in seen):
        return ExitStatus.UNREACHABLE
    if any(o.status == "failed" for o in seen):
        return ExitStatus.APPLY_FAILED
    if seen and all(o.status == "skipped" for o in seen):
        warn_line(f"{service}: no host runs it: nothing was run")
        return ExitStatus.APPLY_FAILED
    return ExitStatus.OK


def _not_running_here(outcome: HostOutcome, service: str) -> bool:
    result = outcome.result
    return bool(
        outcome.status == "failed"
        and result is not None
        and result.exit_status == 3
        and f"no running container of {service} here" in result.stderr
    )

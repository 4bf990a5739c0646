"""`pushorch logs`: a service's container logs from every host it runs on, merged as lines arrive."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Iterator
from typing import Any

import click

from pushorch.cli.app import follow_host_options
from pushorch.cli.compose_opts import playbooks_and_service
from pushorch.errors import ExitStatus, InputError, Problem


@click.command()
@follow_host_options
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new lines until Ctrl-C.")
@click.option("--since", metavar="WHEN", help="Only lines since then (docker logs --since: 10m, 2026-11-29T10:00).")
@click.option("--tail", "tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines of each host.")
@click.option("--grep", "pattern", metavar="REGEX", help="Only lines matching this regular expression.")
@playbooks_and_service
def logs(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    follow: bool,
    since: str | None,
    tail: int | None,
    pattern: str | None,
    args: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Show SERVICE's logs from its running container on every host, each line prefixed with its host."""
    from pushorch.cli.converge_cmds import service_hosts
    from pushorch.cli.prepare import prepare
    from pushorch.commands import service_scripts
    from pushorch.converge import connected
    from pushorch.report import LogPrinter, warn_line

    if len(args) < 2:
        raise click.UsageError("give the playbook(s), then the service")
    *playbooks, service = args
    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise InputError([Problem("--grep", 0, 0, "", f"not a regular expression: {exc}")]) from None
    spec, settings, _ = prepare(inventories, tuple(playbooks), extra_vars, limit, connection)
    hosts = service_hosts(spec, service, playbooks[0])
    printer = LogPrinter(hosts)
    argv = service_scripts.service_logs(service, follow, since, tail)
    statuses: dict[str, int] = {}

    async def main() -> dict[str, str]:
        async with connected({h: settings[h] for h in hosts}, forks) as (transports, unreachable, _):
            for host, error in unreachable.items():
                warn_line(f"{host}: UNREACHABLE: {error}")
            await asyncio.gather(*(one(transports, unreachable, h) for h in transports))
        return dict(unreachable)

    async def one(transports: dict[str, Any], unreachable: dict[str, str], host: str) -> None:
        def line(stream: str, text: str) -> None:
            if stream == "stderr":
                printer.problem(host, text)
            elif matcher is None or matcher.search(text):
                printer.line(host, text)

        try:
            statuses[host] = await transports[host].stream(argv, line)
        except Exception as exc:  # a host that drops is reported; the others go on
            unreachable[host] = str(exc)
            warn_line(f"{host}: UNREACHABLE: {exc}")

    try:
        with _ended_by_ctrl_c_or_term() if follow else contextlib.nullcontext():
            unreachable = asyncio.run(main())
    except KeyboardInterrupt:  # the way -f ends: every remote `docker logs` ends with its channel
        return ExitStatus.OK
    if unreachable:
        return ExitStatus.UNREACHABLE
    if any(s == 0 for s in statuses.values()):
        return ExitStatus.OK
    warn_line(f"{service}: no host showed its logs (see each host's line above)")  # nothing asked was done
    return ExitStatus.APPLY_FAILED


@contextlib.contextmanager
def _ended_by_ctrl_c_or_term() -> Iterator[None]:
    """`logs -f` ends only by a signal, so it must get one: a shell without job control (a script's
    `&`, cron, CI) starts commands with SIGINT ignored, and a Ctrl-C sent to them with `kill -INT`
    did nothing (seen in the full suite). SIGINT gets Python's own handler back (asyncio.run then
    cancels the run and closes every channel, so each remote reader ends too), and SIGTERM is turned
    into a SIGINT to end it the same way."""

    def interrupt(signum: int, frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)

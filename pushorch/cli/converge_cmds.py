"""`pushorch plan` and `pushorch apply`: observe -> plan (-> execute), level-based."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pushorch.cli.app import (
    current_app,
    host_options,
    load_context,
    lock_options,
    tag_options,
)
from pushorch.cli.compose_opts import compose_options, playbooks_and_service
from pushorch.cli.prepare import (
    converge_locked,
    exit_status,
    prepare,
    prepare_locked,
)
from pushorch.errors import ExitStatus, InputError, Problem

if TYPE_CHECKING:  # imported where used: a command loads only what it runs
    from pushorch.actions import Plan
    from pushorch.connection import ConnectionSettings
    from pushorch.fleet.lock import Locking
    from pushorch.observed import ObservedHost
    from pushorch.planner import Options
    from pushorch.spec import Spec

F = TypeVar("F", bound=Callable[..., Any])


def playbooks_argument(func: F) -> F:
    """PLAYBOOK... (playbooks, compose files, Kubernetes manifests) and the options compose files take."""
    return compose_options(click.argument("playbooks", nargs=-1, required=True, type=click.Path())(func))


def playbook_options(func: F) -> F:
    """ansible-playbook's habits: --tags/--skip-tags, --list-hosts, --syntax-check (= `pushorch check`)."""
    func = click.option("--syntax-check", is_flag=True, help="Check the input and exit (as `pushorch check`).")(func)
    func = click.option("--list-hosts", is_flag=True, help="List each play's hosts and exit (nothing connects).")(func)
    return tag_options(func)


def offline(
    inventories: tuple[str, ...],
    playbooks: tuple[str, ...],
    extra_vars: tuple[str, ...],
    limit: str | None,
    list_hosts: bool,
    syntax_check: bool,
) -> int | None:
    """--list-hosts / --syntax-check: answered from the input alone; None when neither was asked."""
    if not (list_hosts or syntax_check):
        return None
    from pushorch.cli.check_cmd import check_input
    from pushorch.report import print_text

    spec = check_input(inventories, playbooks, extra_vars, limit, quiet=list_hosts)
    if list_hosts:
        print_text(_host_listing(spec))
    return ExitStatus.OK


def _host_listing(spec: Spec) -> str:
    """ansible-playbook --list-hosts' layout: per playbook, each play in its order, pattern and hosts."""
    from pushorch.load.owner import owner
    from pushorch.load.yamlfile import load_yaml

    members: dict[tuple[str, str, str], list[str]] = {}
    tagged: dict[tuple[str, str, str], list[str]] = {}
    for name, host in spec.hosts.items():
        for play, source in zip(host.plays, host.sources, strict=True):
            pattern = play.hosts if isinstance(play.hosts, str) else ",".join(play.hosts)
            key = (source, play.name or pattern, pattern)
            members.setdefault(key, []).append(name)
            tagged[key] = play.tags
    lines = []
    for path in spec.playbooks:
        lines += ["", f"playbook: {path}"]
        raw = load_yaml(path, load_context())[0].data or []
        for number, written in enumerate((p for p in raw if isinstance(p, dict)), 1):
            hosts = written.get("hosts", "")
            pattern = hosts if isinstance(hosts, str) else ",".join(map(str, hosts))
            key = (owner(path), str(written.get("name") or pattern), pattern)
            found = members.get(key, [])
            lines += ["", f"  play #{number} ({pattern}): {key[1]}\tTAGS: [{', '.join(tagged.get(key, []))}]"]
            lines += [f"    pattern: {[pattern]}", f"    hosts ({len(found)}):", *(f"      {h}" for h in found)]
    return "\n".join(lines)


@click.command()
@host_options
@click.option("--json", "as_json", is_flag=True, help="The plan as one JSON document.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 8 when anything would change.")
@playbook_options
@playbooks_argument
def plan(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    detailed_exitcode: bool,
    playbooks: tuple[str, ...],
    forks: int,
    list_hosts: bool,
    syntax_check: bool,
    **connection: Any,
) -> int:
    """Show what apply would do on each host, and why (one probe per host, nothing changed)."""
    from pushorch.converge import converge
    from pushorch.report import print_json, print_plan

    done = offline(inventories, playbooks, extra_vars, limit, list_hosts, syntax_check)
    if done is not None:
        return done
    spec, settings, options, locking = prepare_locked(inventories, playbooks, extra_vars, limit, connection, None, 0)
    # No lock is taken, but the fleet record is read from the lock host: the plan is what apply would run.
    outcome = asyncio.run(converge(spec, settings, options=options, forks=forks, check_only=True, locking=locking))
    if as_json:
        print_json(outcome.first_plan.to_json(), indent=2)
    else:
        print_plan(outcome.first_plan, outcome.unreachable)
    return exit_status(outcome, bool(outcome.first_plan), detailed_exitcode)


@click.command()
@host_options
@click.option("--check", is_flag=True, help="Plan only: show what would change, change nothing.")
@click.option("--diff", is_flag=True, help="Show file differences (secrets masked).")
@click.option("--prune", is_flag=True, help="Remove containers of services these playbooks no longer declare.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one per change, then a summary.")
@lock_options
@playbook_options
@playbooks_argument
def apply(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    check: bool,
    diff: bool,
    prune: bool,
    as_json: bool,
    playbooks: tuple[str, ...],
    forks: int,
    lock_file: str | None,
    lock_wait: float,
    lock_ttl: int | None,
    list_hosts: bool,
    syntax_check: bool,
    **connection: Any,
) -> int:
    """Make every host match the playbooks: Docker, files, containers, Consul definitions."""
    from dataclasses import replace

    from pushorch.report import ApplyReporter, print_json_lines, print_plan

    done = offline(inventories, playbooks, extra_vars, limit, list_hosts, syntax_check)
    if done is not None:
        return done
    app = current_app()
    if prune and (app.tags or app.skip_tags):
        # A service left out by --tags would look undeclared: pruning would remove it.
        raise click.UsageError("--prune cannot be combined with --tags or --skip-tags")
    if prune and limit:
        # What is declared is judged from the limited run: Consul KV (the cluster's, not a host's) of
        # every service not placed on the limited hosts would look undeclared and be deleted.
        raise click.UsageError("--prune cannot be combined with --limit: prune with the whole inventory")
    spec, settings, options, locking = prepare_locked(
        inventories, playbooks, extra_vars, limit, connection, lock_ttl, lock_wait
    )
    reporter = ApplyReporter(list(spec.hosts), as_json=as_json)
    outcome = converge_locked(
        lock_file,
        locking,
        check_only=check,
        spec=spec,
        settings=settings,
        options=replace(options, prune=prune),
        forks=forks,
        diff=diff,
        emit=reporter.event,
    )
    if check:
        if as_json:  # JSON lines, as --json promises: the plan is one more line, never text after them
            print_json_lines([{"plan": outcome.first_plan.to_json(), "unreachable": outcome.unreachable}])
        else:
            print_plan(outcome.first_plan, outcome.unreachable)
        return exit_status(outcome, bool(outcome.first_plan), False)
    reporter.recap(outcome)
    return exit_status(outcome, False, False)


@click.command()
@host_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document: rows and unreachable hosts.")
@playbooks_argument
def status(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    playbooks: tuple[str, ...],
    forks: int,
    **connection: Any,
) -> int:
    """Service x host: version, state, health, Consul registration and drift (one probe per host)."""
    from pushorch.report import print_json, print_table, warn_line
    from pushorch.status import status as collect

    spec, settings, _ = prepare(inventories, playbooks, extra_vars, limit, connection)
    rows, unreachable = asyncio.run(collect(spec, settings, forks))
    if as_json:
        print_json({"services": [r.to_json() for r in rows], "unreachable": unreachable}, indent=2)
    else:
        columns = ["service", "host", "version", "state", "health", "consul", "drift"]
        columns += ["ingress"] if any(r.ingress != "-" for r in rows) else []
        print_table(columns, [r.to_json() for r in rows])
        for host, error in sorted(unreachable.items()):
            warn_line(f"{host}: UNREACHABLE: {error}")
    return ExitStatus.UNREACHABLE if unreachable else ExitStatus.OK


@click.command()
@host_options
@click.option("--to", "to_version", metavar="VERSION", help="Go to this version (default: the previous one).")
@click.option(
    "--hold", is_flag=True, help="Keep it there: apply and reconcile leave SERVICE alone until the playbook changes."
)
@click.option("--release", is_flag=True, help="End a --hold (nothing is deployed; the next apply or reconcile is).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one per change, then a summary.")
@lock_options
@playbooks_and_service
def rollback(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    to_version: str | None,
    hold: bool,
    release: bool,
    as_json: bool,
    args: tuple[str, ...],
    forks: int,
    lock_file: str | None,
    lock_wait: float,
    lock_ttl: int | None,
    **connection: Any,
) -> int:
    """Roll SERVICE back to its previous (or --to) kept container, as it was (image, env, config files):
    a gated rollout, the playbook unchanged. --hold keeps it there; --release ends a hold."""
    from pushorch.planner.rollback import rollback_plan

    if release and (hold or to_version):
        raise click.UsageError("--release ends a hold: give it alone")
    spec, settings, options, locking, service = _service_command(
        inventories, args, extra_vars, limit, connection, lock_ttl, lock_wait, "roll back"
    )
    if release:
        return _release(spec, settings, service, forks)

    def planner(spec_: Spec, observed: Mapping[str, ObservedHost], options_: Options) -> Plan:
        return rollback_plan(spec_, observed, options_, service, to_version, hold)

    return _converge_reported(as_json, lock_file, locking, spec, settings, options, forks, planner=planner, once=True)


def _release(spec: Spec, settings: dict[str, ConnectionSettings], service: str, forks: int) -> int:
    """`rollback --release`: the hold files go from every host of the service (nothing else changes)."""
    from pushorch.commands import marks
    from pushorch.fanout import run_everywhere
    from pushorch.report import LogPrinter, warn_line

    hosts = service_hosts(spec, service, spec.playbooks[0])
    outcomes = asyncio.run(run_everywhere([settings[h] for h in hosts], marks.release(service), forks=forks))
    printer = LogPrinter(hosts)
    for outcome in outcomes:
        if outcome.status == "ok":
            printer.line(outcome.host, f"{service}: hold released")
        else:
            warn_line(f"{outcome.host}: {outcome.status.upper()}: {outcome.error or ''}")
    if any(o.status == "unreachable" for o in outcomes):
        return ExitStatus.UNREACHABLE
    return ExitStatus.APPLY_FAILED if any(o.status == "failed" for o in outcomes) else ExitStatus.OK


@click.command()
@host_options
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one per change, then a summary.")
@lock_options
@playbooks_and_service
def restart(
    inventories: tuple[str, ...],
    limit: str | None,
    extra_vars: tuple[str, ...],
    as_json: bool,
    args: tuple[str, ...],
    forks: int,
    lock_file: str | None,
    lock_wait: float,
    lock_ttl: int | None,
    **connection: Any,
) -> int:
    """Restart SERVICE's containers batch by batch under its update policy and gates (nothing else changes)."""
    from pushorch.planner.restart import restart_plan

    spec, settings, options, locking, service = _service_command(
        inventories, args, extra_vars, limit, connection, lock_ttl, lock_wait, "restart"
    )

    def planner(spec_: Spec, observed: Mapping[str, ObservedHost], _: Options) -> Plan:
        return restart_plan(spec_, observed, service)

    return _converge_reported(
        as_json,
        lock_file,
        locking,
        spec,
        settings,
        options,
        forks,
        planner=planner,
        once=True,
        reverts=False,
        asked=f"restart {service}",
    )


def _converge_reported(
    as_json: bool,
    lock_file: str | None,
    locking: Locking,
    spec: Spec,
    settings: dict[str, ConnectionSettings],
    options: Options,
    forks: int,
    reverts: bool = True,
    asked: str = "",
    **kw: Any,
) -> int:
    """rollback and restart: converge under the locks, each change as it happens, then the recap.
    `asked`: what the command was asked to do; a run that did none of it exits 5 and says so last."""
    from pushorch.report import ApplyReporter, warn_line

    reporter = ApplyReporter(list(spec.hosts), as_json=as_json)
    outcome = converge_locked(
        lock_file, locking, spec=spec, settings=settings, options=options, forks=forks, emit=reporter.event, **kw
    )
    reporter.recap(outcome)
    status = exit_status(outcome, False, False, reverts)
    if asked and status == ExitStatus.OK and not outcome.first_plan.rollouts:
        why = "; ".join(outcome.first_plan.notes) or "no host runs it"
        warn_line(f"{asked}: nothing was done: {why}")
        return ExitStatus.APPLY_FAILED
    return status


def _service_command(
    inventories: tuple[str, ...],
    args: tuple[str, ...],
    extra_vars: tuple[str, ...],
    limit: str | None,
    connection: dict[str, Any],
    lock_ttl: int | None,
    lock_wait: float,
    verb: str,
) -> tuple[Spec, dict[str, ConnectionSettings], Options, Locking, str]:
    """`PLAYBOOK... SERVICE` commands: the loaded spec etc., and the service, which must be declared."""
    if len(args) < 2:
        raise click.UsageError(f"give the playbook(s), then the service to {verb}")
    *playbooks, service = args
    spec, settings, options, locking = prepare_locked(
        inventories, tuple(playbooks), extra_vars, limit, connection, lock_ttl, lock_wait
    )
    service_hosts(spec, service, playbooks[0])
    return spec, settings, options, locking, service


def placed_on_some(spec: Spec, service: str) -> bool:
    """A `replicas` service runs on some of its plays' hosts: where it does not, there is nothing to act on."""
    return any(
        s.replicas is not None for h in spec.hosts.values() for p in h.plays for s in p.services if s.name == service
    )


def service_hosts(spec: Spec, service: str, playbook: str) -> list[str]:
    """The hosts whose plays declare `service`; bad input (exit 3) when none does."""
    hosts = [h for h, s in spec.hosts.items() if any(x.name == service for p in s.plays for x in p.services)]
    if not hosts:
        raise InputError([Problem(playbook, 0, 0, "services", f"no service named {service!r} in these playbooks")])
    return hosts

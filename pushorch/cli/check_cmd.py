"""`pushorch check`: validate inventory, playbooks and every template, offline."""

from __future__ import annotations

from typing import Any

import click

from pushorch.cli.app import (
    extra_vars_option,
    inventory_option,
    inventory_sources,
    limit_option,
    load_context,
    tag_options,
    warn_inventory,
)
from pushorch.cli.compose_opts import compose_options
from pushorch.report import print_text


@click.command()
@inventory_option
@extra_vars_option
@limit_option
@tag_options
@compose_options
@click.argument("playbooks", nargs=-1, required=True, type=click.Path())
def check(
    inventories: tuple[str, ...], extra_vars: tuple[str, ...], limit: str | None, playbooks: tuple[str, ...]
) -> int:
    """Validate inventory, playbooks and every template for every host, offline (exit 0 or 3)."""
    check_input(inventories, playbooks, extra_vars, limit)
    return 0


def check_input(
    inventories: tuple[str, ...],
    playbooks: tuple[str, ...],
    extra_vars: tuple[str, ...],
    limit: str | None,
    quiet: bool = False,
) -> Any:
    """Load and render everything (InputError, exit 3, on any problem); says what it checked."""
    from pushorch.cli.prepare import merge_hosts, variable_problems
    from pushorch.errors import InputError, Problem
    from pushorch.load.playbooks import load_spec  # pydantic and jinja2 load only when needed
    from pushorch.variables import VariableError, typed

    inventory, spec = load_spec(inventory_sources(inventories), playbooks, extra_vars, limit, load_context())
    warn_inventory(inventory)
    problems: list[Problem] = []
    for host, host_spec in spec.hosts.items():
        try:
            typed(host_spec.vars)
        except VariableError as exc:
            problems.extend(variable_problems(exc, inventory, host, extra_vars))
    if problems:
        raise InputError(merge_hosts(problems))
    if not quiet:
        plays = sum(len(h.plays) for h in spec.hosts.values())
        files = sum(len(h.files) for h in spec.hosts.values())
        print_text(
            f"ok: {len(playbooks)} playbook(s), {len(spec.hosts)} host(s), "
            f"{plays} play x host renderings, {files} template(s) rendered"
        )
    return spec

"""`pushorch check`: validate inventory, playbooks and templates offline."""

from __future__ import annotations

import click

from pushorch.cli.app import inventory_option, inventory_sources
from pushorch.load.inventory import load_inventory


@click.command()
@inventory_option
@click.argument("playbooks", nargs=-1, type=click.Path())
def check(inventories: tuple[str, ...], playbooks: tuple[str, ...]) -> int:
    """Validate inventory, playbooks and every template, offline (exit 0 or 3)."""
    load_inventory(inventory_sources(inventories))
    return 0

"""`pushorch inventory`: show the inventory as ansible-inventory does (--list, --graph, --host)."""

from __future__ import annotations

import click

from pushorch.ansible import export as inventory_export
from pushorch.ansible.load_inventory import load_inventory
from pushorch.cli.app import (
    inventory_option,
    inventory_sources,
    limit_option,
    load_context,
    target_hosts,
    warn_inventory,
)
from pushorch.errors import InventoryError, Problem
from pushorch.report import print_json, print_text


@click.command()
@inventory_option
@limit_option
@click.option("--list", "as_list", is_flag=True, help="All groups and hosts as JSON.")
@click.option("--graph", "graph", is_flag=True, help="The group tree (from GROUP, default all).")
@click.option("--host", "host", metavar="NAME", help="One host's merged variables as JSON.")
@click.option("--vars", "show_vars", is_flag=True, help="With --graph: show variables.")
@click.option("--export", is_flag=True, help="With --list: group vars in groups, only own vars per host.")
@click.argument("group", required=False)
def inventory(
    inventories: tuple[str, ...],
    limit: str | None,
    as_list: bool,
    graph: bool,
    host: str | None,
    show_vars: bool,
    export: bool,
    group: str | None,
) -> int:
    """Show the inventory (exactly as `ansible-inventory` lays it out)."""
    if sum([as_list, graph, host is not None]) != 1:
        raise click.UsageError("give exactly one of --list, --graph, --host NAME")
    inv = load_inventory(inventory_sources(inventories), load_context())
    warn_inventory(inv)
    if limit:
        keep = set(target_hosts(inv, "all", limit))
        for name in [h for h in inv.hosts if h not in keep]:
            del inv.hosts[name]
            for g in inv.groups.values():
                if name in g.hosts:
                    g.hosts.remove(name)
    if as_list:
        print_json(inventory_export.as_list(inv, export=export))
    elif graph:
        start = group or "all"
        if start not in inv.groups:
            raise InventoryError(Problem("--graph", 0, 0, "", f"no group named {start!r}"))
        print_text(inventory_export.as_graph(inv, start, show_vars))
    else:
        assert host is not None
        if host not in inv.hosts:
            raise InventoryError(Problem("--host", 0, 0, "", f"no host named {host!r} in the inventory"))
        print_json(inventory_export.host_variables(inv, host))
    return 0

"""The inventory laid out exactly as `ansible-inventory --list / --graph / --host` lays it out."""

from __future__ import annotations

from typing import Any

from pushorch.ansible.inventory import INTERNAL_VARS, Inventory
from pushorch.secret import redact


def _public(variables: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in variables.items() if k not in INTERNAL_VARS}


def host_variables(inventory: Inventory, host: str, export: bool = False) -> dict[str, Any]:
    """Merged variables (or, with export, only those set on the host itself)."""
    if export:
        own = dict(inventory.hosts[host].vars)
        for vd in inventory.vars_dirs:
            own.update(vd.hosts.get(host, {}))
        return _public(own)
    return _public(inventory.host_vars(host))


def group_variables(inventory: Inventory, group: str) -> dict[str, Any]:
    variables = inventory.group_vars(group)
    if inventory.groups[group].priority != 1:
        variables["ansible_group_priority"] = inventory.groups[group].priority
    return _public(variables)


def as_list(inventory: Inventory, export: bool = False) -> dict[str, Any]:
    """The `--list` document: each group's hosts and children (and vars with export), plus _meta."""
    out: dict[str, Any] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        group = inventory.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            entry["hosts"] = list(group.hosts)
        entry["children"] = list(group.children)
        out[name] = entry
        for child in group.children:
            if child not in seen:
                seen.add(child)
                visit(child)
        if export:
            entry["vars"] = group_variables(inventory, name)
        for key in ("hosts", "vars", "children"):
            if key in entry and not entry[key]:
                del entry[key]
        if not entry:
            del out[name]

    visit("all")
    hostvars = {h: host_variables(inventory, h, export) for h in inventory.group_hosts("all")}
    out["_meta"] = {"hostvars": {h: v for h, v in hostvars.items() if v}, "profile": "inventory_legacy"}
    return redact(out)  # type: ignore[no-any-return]


def as_graph(inventory: Inventory, group: str = "all", show_vars: bool = False) -> str:
    """The `--graph` tree, `--vars` adding `{name = value}` leaves."""

    def label(text: str, depth: int) -> str:
        return "  |" * depth + "--" + text if depth else text

    def variables(values: dict[str, Any], depth: int) -> list[str]:
        return [label(f"{{{k} = {v}}}", depth) for k, v in sorted(redact(values).items())]

    def visit(name: str, depth: int) -> list[str]:
        lines = [label(f"@{name}:", depth)]
        for child in inventory.groups[name].children:
            lines.extend(visit(child, depth + 1))
        if name != "all":
            for host in inventory.groups[name].hosts:
                lines.append(label(host, depth + 1))
                if show_vars:
                    lines.extend(variables(host_variables(inventory, host), depth + 2))
        if show_vars:
            lines.extend(variables(group_variables(inventory, name), depth + 1))
        return lines

    return "\n".join(visit(group, 0))

"""The inventory model: hosts, groups, their variables, and Ansible's variable precedence.

Built by `pushorch.load.inventory`; pure data and lookups, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Variables ansible-inventory never prints (magic or internal); kept out of --list output.
INTERNAL_VARS = frozenset(
    [
        "ansible_async_path",
        "ansible_collection_name",
        "ansible_config_file",
        "ansible_dependent_role_names",
        "ansible_diff_mode",
        "ansible_facts",
        "ansible_forks",
        "ansible_inventory_sources",
        "ansible_limit",
        "ansible_play_batch",
        "ansible_play_hosts",
        "ansible_play_hosts_all",
        "ansible_play_role_names",
        "ansible_playbook_python",
        "ansible_role_name",
        "ansible_role_names",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_verbosity",
        "ansible_version",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname",
        "inventory_hostname_short",
        "groups",
        "group_names",
        "hostvars",
        "omit",
        "playbook_dir",
        "play_hosts",
        "role_name",
        "role_names",
        "role_path",
    ]
)


@dataclass(slots=True)
class Group:
    """A group as declared: direct hosts and child groups, in declaration order."""

    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass(slots=True)
class Host:
    """A host and the variables set on it directly in the inventory."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


@dataclass(slots=True)
class VarsDir:
    """What one inventory source's group_vars/ and host_vars/ hold, merged per entity."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: str = ""  # the directory holding group_vars/ and host_vars/


@dataclass(slots=True)
class Inventory:
    """All hosts and groups of every inventory source, with `all` and `ungrouped` always present."""

    groups: dict[str, Group] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    vars_dirs: list[VarsDir] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what ansible-core would warn about, said on stderr
    sources: list[str] = field(default_factory=list)  # the -i sources, as given

    def __post_init__(self) -> None:
        for name in ("all", "ungrouped"):
            self.groups.setdefault(name, Group(name))
        self.add_child("all", "ungrouped")

    # -- building (used by the loaders) --------------------------------------------------------
    def add_group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group(name))

    def add_host(self, name: str, group: str | None = None) -> Host:
        host = self.hosts.setdefault(name, Host(name))
        if group is not None and name not in self.groups[group].hosts:
            self.groups[group].hosts.append(name)
            host.groups.append(group)
        return host

    def add_child(self, parent: str, child: str) -> None:
        """Make child a child group of parent; ValueError when that would make a loop."""
        if child == parent or child in self.ancestors([parent]):
            raise ValueError(f"group {child!r} as a child of {parent!r} makes a loop")
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)
            self.groups[child].parents.append(parent)

    def set_group_var(self, group: str, key: str, value: Any) -> None:
        # Ansible keeps the priority on the group, not among its variables.
        if key == "ansible_group_priority":
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"ansible_group_priority must be an integer, got {value!r}") from None
        else:
            self.groups[group].vars[key] = value

    def reconcile(self) -> None:
        """Ansible's rules after loading: top groups under `all`; `ungrouped` holds only group-less hosts."""
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.add_child("all", group.name)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            others = [g for g in host.groups if g not in ("all", "ungrouped")]
            if others and "ungrouped" in host.groups:
                ungrouped.hosts.remove(host.name)
                host.groups.remove("ungrouped")
            elif not others and "ungrouped" not in host.groups:
                self.add_host(host.name, "ungrouped")

    # -- lookups ---------------------------------------------------------------------------------
    def depth(self, group: str) -> int:
        """Longest path from `all` (Ansible's group depth, which orders variable precedence)."""
        parents = self.groups[group].parents
        return 0 if not parents else 1 + max(self.depth(p) for p in parents)

    def ancestors(self, groups: Iterable[str]) -> list[str]:
        """The given groups and every group above them, each once."""
        out: list[str] = []
        todo = list(groups)
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo.extend(self.groups[name].parents)
        return out

    def host_groups(self, host: str) -> list[str]:
        """Every group the host belongs to, directly or through a child group, `all` included."""
        return self.ancestors([*self.hosts[host].groups, "all"])

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of a group and of its descendants, level by level in declaration order."""
        out: dict[str, None] = {}
        level, seen = [group], {group}
        while level:
            for name in level:
                out.update(dict.fromkeys(self.groups[name].hosts))
            nxt = [c for name in level for c in self.groups[name].children if c not in seen]
            seen.update(nxt)
            level = list(dict.fromkeys(nxt))
        if group == "all":
            out.update(dict.fromkeys(self.hosts))
        return list(out)

    def sorted_groups(self, host: str) -> list[str]:
        """The host's groups but `all`, ordered by (depth, priority, name): later ones win."""
        groups = [g for g in self.host_groups(host) if g != "all"]
        return sorted(groups, key=lambda g: (self.depth(g), self.groups[g].priority, g))

    def host_vars(self, host: str) -> dict[str, Any]:
        """Merged variables in Ansible's precedence (lowest first), top-level keys replaced:

        all (inventory) < group_vars/all < groups (inventory, by depth/priority/name)
        < group_vars/<group> < host (inventory) < host_vars/<host>
        """
        groups = self.sorted_groups(host)
        merged: dict[str, Any] = dict(self.groups["all"].vars)
        for vd in self.vars_dirs:
            merged.update(vd.groups.get("all", {}))
        for g in groups:
            merged.update(self.groups[g].vars)
        for vd in self.vars_dirs:
            for g in groups:
                merged.update(vd.groups.get(g, {}))
        merged.update(self.hosts[host].vars)
        for vd in self.vars_dirs:
            merged.update(vd.hosts.get(host, {}))
        return merged

    def origin(self, host: str, key: str) -> str:
        """Where the value host_vars(host)[key] was set, for error messages: the same precedence,
        highest first."""
        groups = self.sorted_groups(host)
        for vd in reversed(self.vars_dirs):
            if key in vd.hosts.get(host, {}):
                return f"{vd.base}/host_vars/{host}"
        inventory = ", ".join(self.sources) or "inventory"
        if key in self.hosts[host].vars:
            return inventory
        for vd in reversed(self.vars_dirs):
            for g in reversed(groups):
                if key in vd.groups.get(g, {}):
                    return f"{vd.base}/group_vars/{g}"
        for g in reversed(groups):
            if key in self.groups[g].vars:
                return f"{inventory} (group {g})"
        for vd in reversed(self.vars_dirs):
            if key in vd.groups.get("all", {}):
                return f"{vd.base}/group_vars/all"
        return f"{inventory} (group all)"

    def group_vars(self, group: str) -> dict[str, Any]:
        """A group's own variables: inventory, then its group_vars files."""
        merged = dict(self.groups[group].vars)
        for vd in self.vars_dirs:
            merged.update(vd.groups.get(group, {}))
        return merged

    def groups_dict(self) -> dict[str, list[str]]:
        """The `groups` template variable: group name -> its hosts."""
        return {name: self.group_hosts(name) for name in self.groups}

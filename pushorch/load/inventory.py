"""Inventory sources -> Inventory: INI and YAML/JSON files, directories, host lists, group_vars/host_vars."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from pushorch.errors import InventoryError, Problem
from pushorch.inventory import Inventory, VarsDir
from pushorch.load.hostnames import expand_host
from pushorch.load.ini import parse_ini
from pushorch.load.yamlfile import Document, KeyPath, load_yaml, read_text

YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# What Ansible skips when it reads an inventory directory.
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)


def load_inventory(sources: Sequence[str]) -> Inventory:
    """Load every source in order into one inventory; raises InventoryError with all problems."""
    inventory = Inventory()
    problems: list[Problem] = []
    for source in sources:
        if "," in source and not os.path.exists(source):
            problems.extend(_host_list(source, inventory))
        elif os.path.isdir(source):
            problems.extend(_directory(source, inventory))
        elif os.path.isfile(source):
            problems.extend(_file(source, inventory))
        else:
            problems.append(Problem(source, 0, 0, "", "no such inventory file or directory"))
    inventory.reconcile()
    for source in sources:
        if os.path.exists(source):
            base = source if os.path.isdir(source) else os.path.dirname(source)
            inventory.vars_dirs.append(_vars_dir(base, inventory, problems))
    if problems:
        raise InventoryError(problems)
    return inventory


def _host_list(source: str, inventory: Inventory) -> list[Problem]:
    """'h1,h2:2222,' -> ungrouped hosts, as Ansible's host_list plugin reads it."""
    problems = []
    for item in source.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            names, port = expand_host(item)
        except ValueError as exc:
            problems.append(Problem(source, 0, 0, item, str(exc)))
            continue
        for name in names:
            host = inventory.add_host(name, "ungrouped")
            if port is not None:
                host.vars["ansible_port"] = port
    return problems


def _directory(path: str, inventory: Inventory) -> list[Problem]:
    problems = []
    for name in sorted(os.listdir(path)):
        if _IGNORED.search(name):
            continue
        full = os.path.join(path, name)
        problems.extend(_directory(full, inventory) if os.path.isdir(full) else _file(full, inventory))
    return problems


def _file(path: str, inventory: Inventory) -> list[Problem]:
    if path.endswith(YAML_EXTENSIONS):
        doc, problems = load_yaml(path)
        return problems or _yaml_inventory(doc, inventory)
    text, problems = read_text(path)
    return problems if text is None else parse_ini(text, path, inventory)


def _yaml_inventory(doc: Document, inventory: Inventory) -> list[Problem]:
    if doc.data is None:
        return [doc.problem((), "inventory file is empty")]
    if not isinstance(doc.data, dict):
        return [doc.problem((), f"a YAML inventory is a mapping of groups, not a {_kind(doc.data)}")]
    if "plugin" in doc.data:
        return [doc.problem(("plugin",), "inventory plugin configuration files are not supported")]
    problems: list[Problem] = []
    for name, body in doc.data.items():
        _yaml_group(doc, inventory, str(name), body, (name,), problems)
    return problems


def _yaml_group(
    doc: Document, inventory: Inventory, name: str, body: Any, path: KeyPath, problems: list[Problem]
) -> None:
    inventory.add_group(name)
    if body is None:
        return
    if not isinstance(body, dict):
        problems.append(doc.problem(path, f"a group is a mapping with hosts, children and vars, not a {_kind(body)}"))
        return
    for key, value in body.items():
        where = (*path, key)
        if key not in ("hosts", "children", "vars"):
            problems.append(doc.problem(where, "unknown key (a group has hosts, children and vars)"))
            continue
        if isinstance(value, str):
            value = {value: None}  # Ansible accepts a single name as a string
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(doc.problem(where, f"must be a mapping, not a {_kind(value)}"))
            continue
        if key == "vars":
            for var, var_value in value.items():
                try:
                    inventory.set_group_var(name, str(var), var_value)
                except ValueError as exc:
                    problems.append(doc.problem((*where, var), str(exc)))
        elif key == "children":
            for child, child_body in value.items():
                _yaml_group(doc, inventory, str(child), child_body, (*where, child), problems)
                try:
                    inventory.add_child(name, str(child))
                except ValueError as exc:
                    problems.append(doc.problem((*where, child), str(exc)))
        else:
            _yaml_hosts(doc, inventory, name, value, where, problems)


def _yaml_hosts(
    doc: Document, inventory: Inventory, group: str, hosts: dict[Any, Any], path: KeyPath, problems: list[Problem]
) -> None:
    for expr, variables in hosts.items():
        where = (*path, expr)
        if not isinstance(expr, str):
            problems.append(doc.problem(where, "a host name must be a string (quote numbers)"))
            continue
        if variables is not None and not isinstance(variables, dict):
            problems.append(doc.problem(where, f"host variables must be a mapping, not a {_kind(variables)}"))
            continue
        try:
            names, port = expand_host(expr)
        except ValueError as exc:
            problems.append(doc.problem(where, str(exc)))
            continue
        for host_name in names:
            host = inventory.add_host(host_name, group)
            if port is not None:
                host.vars["ansible_port"] = port
            host.vars.update({str(k): v for k, v in (variables or {}).items()})


def _vars_dir(base: str, inventory: Inventory, problems: list[Problem]) -> VarsDir:
    """group_vars/ and host_vars/ beside one inventory source, for the entities that exist."""
    found = VarsDir()
    for subdir, names, target in (
        ("group_vars", list(inventory.groups), found.groups),
        ("host_vars", list(inventory.hosts), found.hosts),
    ):
        directory = os.path.join(base, subdir)
        if not os.path.isdir(directory):
            continue
        for name in names:
            merged: dict[str, Any] = {}
            for path in _vars_files(directory, name):
                merged.update(_vars_file(path, problems))
            if merged:
                target[name] = merged
    return found


def _vars_files(directory: str, name: str) -> list[str]:
    """Ansible's lookup: <name>, <name>.yml, .yaml, .json — the first that exists; a directory is read whole."""
    for ext in ("", ".yml", ".yaml", ".json"):
        path = os.path.join(directory, name + ext)
        if os.path.isdir(path):
            return _dir_files(path)
        if os.path.exists(path):
            return [path]
    return []


def _dir_files(directory: str) -> list[str]:
    out: list[str] = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        full, ext = os.path.join(directory, entry), os.path.splitext(entry)[1]
        if os.path.isdir(full) and not ext:
            out.extend(_dir_files(full))
        elif os.path.isfile(full) and (not ext or ext in YAML_EXTENSIONS):
            out.append(full)
    return out


def _vars_file(path: str, problems: list[Problem]) -> dict[str, Any]:
    doc, found = load_yaml(path)
    problems.extend(found)
    if found or doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), f"a vars file must be a mapping, not a {_kind(doc.data)}"))
        return {}
    return {str(k): v for k, v in doc.data.items()}


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")

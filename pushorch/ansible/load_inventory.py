"""Inventory sources -> Inventory: INI and YAML/JSON files, directories, host lists, group_vars/host_vars."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any

from pushorch.ansible.hostnames import expand_host
from pushorch.ansible.ini import parse_ini
from pushorch.ansible.inventory import Inventory, VarsDir
from pushorch.errors import InventoryError, Problem
from pushorch.load.context import NO_CONTEXT, InventoryScript, LoadContext
from pushorch.load.yamlfile import Document, KeyPath, load_yaml, read_text

YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# What Ansible skips when it reads an inventory directory.
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)


def load_inventory(sources: Sequence[str], context: LoadContext = NO_CONTEXT) -> Inventory:
    """Load every source in order into one inventory; raises InventoryError with all problems.
    `context`: the run's vault passwords and inventory-script runner."""
    inventory = Inventory(sources=list(sources))
    problems: list[Problem] = []
    parsed = False
    for source in sources:
        if "," in source and not os.path.exists(source):
            problems.extend(_host_list(source, inventory))
            parsed = True
        elif os.path.isdir(source):
            found = _directory(source, inventory, context)
            problems.extend(found)
            if _sources_in(source) or found:
                parsed = True
            else:  # only group_vars/host_vars (or nothing): ansible-core parses nothing here
                inventory.warnings.append(f"Unable to parse {os.path.abspath(source)} as an inventory source")
        elif os.path.isfile(source):
            problems.extend(_file(source, inventory, context))
            parsed = True
        else:
            problems.append(Problem(source, 0, 0, "", "no such inventory file or directory"))
    if not parsed and not problems:
        inventory.warnings.append("No inventory was parsed, only implicit localhost is available")
    inventory.reconcile()
    inventory.warnings.extend(_name_warnings(inventory))
    for source in sources:
        if os.path.exists(source):
            base = source if os.path.isdir(source) else os.path.dirname(source)
            inventory.vars_dirs.append(_vars_dir(base, inventory, problems, context))
    if problems:
        raise InventoryError(problems)
    return inventory


def _host_list(source: str, inventory: Inventory) -> list[Problem]:
    """'h1,h2:2222,' -> ungrouped hosts, as Ansible's host_list plugin reads it: no ranges ('web[1:3],'
    is one host of that name), and an item that is not an address is taken as the name it is."""
    for item in source.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            names, port = expand_host(item)
        except ValueError:
            names, port = [item], None
        if len(names) != 1 or ("[" in item and not item.startswith("[")):
            names, port = [item], None  # a range, or brackets that are not an IPv6 address: literal
        host = inventory.add_host(names[0], "ungrouped")
        if port is not None:
            host.vars["ansible_port"] = port
    return []


def _sources_in(path: str) -> bool:
    """Whether a directory holds anything ansible-core would read as an inventory source."""
    for name in os.listdir(path):
        if _IGNORED.search(name):
            continue
        full = os.path.join(path, name)
        if not os.path.isdir(full) or _sources_in(full):
            return True
    return False


_GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _name_warnings(inventory: Inventory) -> list[str]:
    """ansible-core's warnings about names: groups that are not valid variable names, and a host and a
    group with the same name."""
    out = []
    if any(not _GROUP_NAME.match(name) for name in inventory.groups):
        out.append("Invalid characters were found in group names but not replaced, use -vvvv to see details")
    out += [
        f"Found both group and host with same name: {n}" for n in sorted(set(inventory.groups) & set(inventory.hosts))
    ]
    return out


def _directory(path: str, inventory: Inventory, context: LoadContext) -> list[Problem]:
    problems = []
    for name in sorted(os.listdir(path)):
        if _IGNORED.search(name):
            continue
        full = os.path.join(path, name)
        problems.extend(
            _directory(full, inventory, context) if os.path.isdir(full) else _file(full, inventory, context)
        )
    return problems


def _file(path: str, inventory: Inventory, context: LoadContext) -> list[Problem]:
    """One file, read as ansible-core reads it: its enabled plugins in order (script, auto, yaml,
    ini, toml), the first that accepts the file and parses it wins. When none does, the problems
    reported are those of the parser its name points at (YAML for .yml/.yaml/.json, TOML for .toml,
    INI otherwise)."""
    ext = os.path.splitext(path)[1]
    if os.access(path, os.X_OK) and context.inventory_script is not None:
        return _script(path, inventory, context.inventory_script)
    if ext == ".toml":
        return _toml(path, inventory, context)
    yaml_problems: list[Problem] = []
    if not ext or ext in YAML_EXTENSIONS:
        doc, yaml_problems = load_yaml(path, context)
        if ext in (".yml", ".yaml") and isinstance(doc.data, dict) and "plugin" in doc.data:
            return [doc.problem(("plugin",), "inventory plugin configuration files are not supported")]
        if not yaml_problems and isinstance(doc.data, dict) and doc.data:
            return _yaml_inventory(doc, inventory)
        if not yaml_problems:
            yaml_problems = [
                doc.problem(
                    (),
                    "inventory file is empty"
                    if doc.data is None
                    else f"a YAML inventory is a mapping of groups, not a {_kind(doc.data)}",
                )
            ]
    text, problems = read_text(path, context)
    if text is None:
        return problems
    scratch = Inventory()
    ini_problems = parse_ini(text, path, scratch)
    if not ini_problems:
        return parse_ini(text, path, inventory)
    return yaml_problems if ext in YAML_EXTENSIONS else ini_problems


def _script(path: str, inventory: Inventory, run_script: InventoryScript) -> list[Problem]:
    """An executable file is an inventory script (Ansible's script plugin): JSON from `--list`, each
    host's vars from `_meta.hostvars` or, without it, from `--host NAME`. The run's context says who
    runs it (the CLI: pushorch/ansible/scripts.py); the loader itself runs nothing."""
    out, error = run_script(path, ["--list"])
    if out is None:
        return [Problem(path, 0, 0, "", f"inventory script: {error}")]
    try:
        data = json.loads(out)
    except ValueError as exc:
        return [Problem(path, 0, 0, "", f"inventory script printed no JSON: {exc}")]
    if not isinstance(data, dict):
        return [Problem(path, 0, 0, "", "inventory script: --list must print a JSON object")]
    meta = data.pop("_meta", None)
    problems: list[Problem] = []
    for name, body in data.items():
        group = {"hosts": body} if isinstance(body, list) else body
        if not isinstance(group, dict):
            problems.append(Problem(path, 0, 0, name, "a group is a list of hosts or an object"))
            continue
        inventory.add_group(name)
        for host in group.get("hosts") or []:
            inventory.add_host(str(host), name)
        for var, value in (group.get("vars") or {}).items():
            inventory.set_group_var(name, str(var), value)
        for child in group.get("children") or []:
            inventory.add_group(str(child))
            inventory.add_child(name, str(child))
    hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    for host in list(inventory.hosts):
        found: Any = (hostvars or {}).get(host, {}) if hostvars is not None else None
        if found is None:  # no _meta: ask the script, host by host, as Ansible does
            text, error = run_script(path, ["--host", host])
            try:
                found = json.loads(text) if text else {}
            except ValueError:
                found = {}
            if text is None:
                problems.append(Problem(path, 0, 0, host, f"inventory script --host: {error}"))
        if isinstance(found, dict):
            inventory.hosts[host].vars.update({str(k): v for k, v in found.items()})
    return problems


def _toml(path: str, inventory: Inventory, context: LoadContext) -> list[Problem]:
    """Ansible's toml inventory: tables are groups with `hosts` (a table of host patterns), `vars`
    and `children` (a list) — the YAML layout, with children listed."""
    import tomllib

    text, problems = read_text(path, context)
    if text is None:
        return problems
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [Problem(path, getattr(exc, "lineno", 0) or 0, getattr(exc, "colno", 0) or 0, "", f"TOML: {exc}")]
    layout: dict[str, Any] = {}
    for name, body in data.items():
        if isinstance(body, dict) and isinstance(body.get("children"), list):
            body = {**body, "children": {str(c): None for c in body["children"]}}
        layout[name] = body
    return _yaml_inventory(Document(path, layout), inventory)


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
    if body is not None and not isinstance(body, dict):
        # ansible-core skips it with a warning (and has no such group).
        inventory.warnings.append(f"Skipping '{name}' as this is not a valid group definition")
        return
    inventory.add_group(name)
    if body is None:
        return
    for key, value in body.items():
        where = (*path, key)
        if key not in ("hosts", "children", "vars"):
            # ansible-core skips it with a warning (a typo such as `host:` is said, not fatal).
            inventory.warnings.append(
                f'Skipping unexpected key "{key}" in group "{name}", only "vars", "children" and "hosts" are valid'
            )
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
                if str(child) not in inventory.groups:  # skipped above: ansible-core fails the source here
                    problems.append(doc.problem((*where, child), f"{child} is not a known host nor group"))
                    continue
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


def _vars_dir(base: str, inventory: Inventory, problems: list[Problem], context: LoadContext) -> VarsDir:
    """group_vars/ and host_vars/ beside one inventory source, for the entities that exist."""
    found = VarsDir(base=os.path.normpath(base))
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
                merged.update(_vars_file(path, problems, context))
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


def _vars_file(path: str, problems: list[Problem], context: LoadContext) -> dict[str, Any]:
    doc, found = load_yaml(path, context)
    problems.extend(found)
    if found or doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), f"a vars file must be a mapping, not a {_kind(doc.data)}"))
        return {}
    return {str(k): v for k, v in doc.data.items()}


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")

"""Ansible's INI inventory format: sections, host lines with inline vars, :vars and :children."""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from pushorch.ansible.hostnames import expand_host
from pushorch.ansible.inventory import Inventory
from pushorch.errors import Problem

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")


def literal(text: str) -> Any:
    """A value as Ansible reads it from INI: a Python literal when it is one, else the string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if value is ... or isinstance(value, complex):
        return "..." if value is ... else str(value)
    return value


def parse_ini(text: str, path: str, inventory: Inventory) -> list[Problem]:
    """Add the hosts and groups of one INI file to the inventory; returns the problems found."""
    problems: list[Problem] = []
    pending_children: dict[str, tuple[int, list[str]]] = {}  # child -> (line, parents) awaiting declaration
    pending_vars: dict[str, int] = {}  # group -> line of a [g:vars] not (yet) declared elsewhere
    group, state = "ungrouped", "hosts"

    def problem(lineno: int, col: int, key: str, message: str) -> None:
        problems.append(Problem(path, lineno, col, key, message))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        col = len(raw) - len(raw.lstrip()) + 1
        if not line or line[0] in "#;":
            continue
        section = _SECTION.match(line)
        if section:
            group, kind = section.group(1), section.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                problem(lineno, col, f"[{group}:{kind}]", f"unknown section type {kind!r} (hosts, children, vars)")
                state = "skip"
                continue
            state = kind
            if group not in inventory.groups:
                if kind == "vars" and group not in pending_children:
                    pending_vars[group] = lineno
                inventory.add_group(group)
            if kind != "vars":
                pending_vars.pop(group, None)
                _declare(inventory, group, pending_children, problems, path)
            continue
        if line.startswith("[") and line.endswith("]"):
            problem(
                lineno, col, line, "invalid section header (no spaces allowed; [name], [name:vars], [name:children])"
            )
            state = "skip"
            continue
        if state == "hosts":
            _host_line(inventory, group, line, lineno, col, path, problems)
        elif state == "vars":
            key, eq, value = line.partition("=")
            if not eq or not key.strip():
                problem(lineno, col, f"[{group}:vars]", f"expected key=value, got {line!r}")
                continue
            try:
                inventory.set_group_var(group, key.strip(), literal(value.strip()))
            except ValueError as exc:
                problem(lineno, col, f"[{group}:vars].{key.strip()}", str(exc))
        elif state == "children":
            match = _GROUP_NAME.match(line)
            if not match:
                problem(lineno, col, f"[{group}:children]", f"expected a group name, got {line!r}")
                continue
            child = match.group(1)
            if child in inventory.groups:
                _add_child(inventory, group, child, lineno, col, path, problems)
            else:
                pending_children.setdefault(child, (lineno, []))[1].append(group)
    for child, (lineno, parents) in pending_children.items():
        problem(lineno, 1, f"[{parents[-1]}:children]", f"includes undefined group {child!r}")
    for group_name, lineno in pending_vars.items():
        problem(lineno, 1, f"[{group_name}:vars]", f"vars for undefined group {group_name!r}")
    return problems


def _declare(
    inventory: Inventory, group: str, pending: dict[str, tuple[int, list[str]]], problems: list[Problem], path: str
) -> None:
    """A group named earlier as a child is now declared: attach it to its parents."""
    if group not in pending:
        return
    lineno, parents = pending.pop(group)
    for parent in parents:
        _add_child(inventory, parent, group, lineno, 1, path, problems)
        _declare(inventory, parent, pending, problems, path)


def _add_child(
    inventory: Inventory, parent: str, child: str, lineno: int, col: int, path: str, problems: list[Problem]
) -> None:
    try:
        inventory.add_child(parent, child)
    except ValueError as exc:
        problems.append(Problem(path, lineno, col, f"[{parent}:children]", str(exc)))


def _host_line(
    inventory: Inventory, group: str, line: str, lineno: int, col: int, path: str, problems: list[Problem]
) -> None:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        problems.append(Problem(path, lineno, col, group, f"cannot parse host line: {exc}"))
        return
    if not tokens:
        return
    try:
        names, port = expand_host(tokens[0])
    except ValueError as exc:
        problems.append(Problem(path, lineno, col, group, str(exc)))
        return
    variables: dict[str, Any] = {}
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or not key:
            problems.append(Problem(path, lineno, col, tokens[0], f"expected key=value host variable, got {token!r}"))
            continue
        variables[key] = literal(value)
    for name in names:
        host = inventory.add_host(name, group)
        if port is not None:
            host.vars["ansible_port"] = port
        host.vars.update(variables)

"""Ansible host patterns: `all`, `*`, globs, `a:b`, `a:&b`, `a:!b`, `~regex`, `@file`, `g[0]`, `g[1:3]`."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from pushorch.ansible.inventory import Inventory

_SUBSCRIPT = re.compile(r"^(.+)\[(-?\d*)(?::(-?\d*))?\]$")


def split_pattern(pattern: str) -> list[str]:
    """'web:&prod,!web-3' -> ['web', '&prod', '!web-3']; commas, else colons outside brackets."""
    if "," in pattern:
        return [p.strip() for p in pattern.split(",") if p.strip()]
    parts, depth, current = [], 0, ""
    for char in pattern:
        depth += (char == "[") - (char == "]")
        if char == ":" and depth == 0 and not current.startswith("~"):
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def select(inventory: Inventory, pattern: str | list[str], read_file: Callable[[str], str] | None = None) -> list[str]:
    """Hosts matched by a pattern, in inventory order of the terms; unions, then &, then !."""
    terms: list[str] = []
    for item in [pattern] if isinstance(pattern, str) else pattern:
        for term in split_pattern(item):
            if term.startswith("@"):
                if read_file is None:
                    raise ValueError(f"{term}: pattern files are not allowed here")
                terms.extend(line.strip() for line in read_file(term[1:]).splitlines() if line.strip())
            else:
                terms.append(term)
    regular = [t for t in terms if t[0] not in "&!"] or ["all"]
    intersect = [t[1:] for t in terms if t[0] == "&"]
    exclude = [t[1:] for t in terms if t[0] == "!"]
    result: dict[str, None] = {}
    for term in regular:
        result.update(dict.fromkeys(_match(inventory, term)))
    for term in intersect:
        keep = set(_match(inventory, term))
        result = {h: None for h in result if h in keep}
    for term in exclude:
        drop = set(_match(inventory, term))
        result = {h: None for h in result if h not in drop}
    return list(result)


def _match(inventory: Inventory, term: str) -> list[str]:
    subscript = _SUBSCRIPT.match(term)
    if subscript and not _match_plain(inventory, term):
        hosts = _match_plain(inventory, subscript.group(1))
        start, end = subscript.group(2), subscript.group(3)
        if end is None:
            index = int(start or 0)
            return [hosts[index]] if -len(hosts) <= index < len(hosts) else []
        return hosts[int(start or 0) : (int(end) + 1) if end else None]
    return _match_plain(inventory, term)


def _match_plain(inventory: Inventory, term: str) -> list[str]:
    if term in ("all", "*"):
        return inventory.group_hosts("all")
    if term.startswith("~"):
        regex = re.compile(term[1:])
        groups = [g for g in inventory.groups if regex.match(g)]
        hosts = [h for h in inventory.hosts if regex.match(h)]
    elif any(c in term for c in "*?["):
        groups = fnmatch.filter(inventory.groups, term)
        hosts = fnmatch.filter(inventory.hosts, term)
    else:
        groups = [term] if term in inventory.groups else []
        hosts = [term] if term in inventory.hosts else []
    out: dict[str, None] = {}
    for group in groups:
        out.update(dict.fromkeys(inventory.group_hosts(group)))
    out.update(dict.fromkeys(hosts))
    return list(out)

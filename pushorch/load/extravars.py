"""Extra vars from the command line: `key=value ...`, a JSON/YAML mapping, or `@file.yml`."""

from __future__ import annotations

import shlex
from typing import Any

from pushorch.errors import Problem
from pushorch.load.context import NO_CONTEXT, LoadContext
from pushorch.load.yamlfile import load_yaml, parse_yaml
from pushorch.variables import secret_extra_vars


def parse_extra_vars(
    items: list[str] | tuple[str, ...], context: LoadContext = NO_CONTEXT
) -> tuple[dict[str, Any], list[Problem]]:
    """Merge every -e in order (later wins), as Ansible does; returns the vars and the problems."""
    merged: dict[str, Any] = {}
    problems: list[Problem] = []
    for index, item in enumerate(items, start=1):
        where = f"-e #{index}"
        text = item.strip()
        if text.startswith("@"):
            doc, found = load_yaml(text[1:], context)
            problems.extend(found)
            data = doc.data if not found else {}
            if data is not None and not isinstance(data, dict):
                problems.append(Problem(text[1:], 1, 1, "", "extra vars file must hold a mapping"))
                continue
            merged.update(data or {})
        elif text.startswith(("{", "[")):
            doc, found = parse_yaml(text, where, context)
            problems.extend(found)
            if not found and not isinstance(doc.data, dict):
                problems.append(Problem(where, 0, 0, "", "extra vars must be a mapping"))
            elif not found:
                merged.update(doc.data)
        else:
            try:
                tokens = shlex.split(text)
            except ValueError as exc:
                problems.append(Problem(where, 0, 0, "", f"cannot parse {item!r}: {exc}"))
                continue
            for token in tokens:
                key, eq, value = token.partition("=")
                if not eq or not key:
                    problems.append(Problem(where, 0, 0, "", f"expected key=value, got {token!r}"))
                    continue
                merged[key] = value
    # A credential typed on the command line is a Secret from here on: redacted wherever it shows.
    return secret_extra_vars(merged), problems

"""Host name expressions as Ansible reads them: `name:port`, `[v6]:port`, ranges `web[01:20]`, `db-[a:c]`."""

from __future__ import annotations

import re
import string

_BRACKETED_PORT = re.compile(r"^\[(.+)\]:(\d+)$")


def split_port(expr: str) -> tuple[str, int | None]:
    """'web1:2222' -> ('web1', 2222); 'web[1:3]' and '::1' have no port; '[::1]:22' has one."""
    bracketed = _BRACKETED_PORT.match(expr)
    if bracketed and ":" in bracketed.group(1) and "[" not in bracketed.group(1):
        return bracketed.group(1), int(bracketed.group(2))
    depth, colons = 0, []
    for index, char in enumerate(expr):
        depth += (char == "[") - (char == "]")
        if char == ":" and depth == 0:
            colons.append(index)
    if len(colons) == 1 and expr[colons[0] + 1 :].isdigit():
        return expr[: colons[0]], int(expr[colons[0] + 1 :])
    return expr, None


def expand_range(expr: str) -> list[str]:
    """Expand the first [begin:end(:step)] and recurse.

    Worked examples: 'web[01:03]' -> web01 web02 web03 (zero fill kept because begin has a leading 0);
    'db-[a:e:2]' -> db-a db-c db-e; 'n[:2]' -> n0 n1 n2 (empty begin means 0).
    """
    if "[" not in expr:
        return [expr]
    head, _, rest = expr.partition("[")
    body, closed, tail = rest.partition("]")
    if not closed:
        raise ValueError(f"unclosed '[' in host range {expr!r}")
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError(f"host range [{body}] must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise ValueError(f"host range [{body}] must give an end value")
    try:
        step = int(step_text)
    except ValueError:
        raise ValueError(f"host range step {step_text!r} is not a number") from None
    if step < 1:
        raise ValueError(f"host range step must be positive, got {step}")
    if begin in string.ascii_letters and end in string.ascii_letters:
        first, last = string.ascii_letters.index(begin), string.ascii_letters.index(end)
        if first > last:
            raise ValueError(f"host range [{body}] must have begin <= end")
        items = list(string.ascii_letters[first : last + 1 : step])
    else:
        width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
        if width and width != len(end):
            raise ValueError(f"host range [{body}] must have begin and end of equal length")
        try:
            items = [str(i).zfill(width) for i in range(int(begin), int(end) + 1, step)]
        except ValueError:
            raise ValueError(f"host range [{body}] is neither numeric nor alphabetic") from None
    out: list[str] = []
    for item in items:
        out.extend(expand_range(f"{head}{item}{tail}"))
    return out


def expand_host(expr: str) -> tuple[list[str], int | None]:
    """A host expression -> (host names, port or None)."""
    name, port = split_port(expr)
    if name.endswith(":") and port is None:
        raise ValueError(f"host {expr!r} ends in ':' with no port after it")
    return expand_range(name), port

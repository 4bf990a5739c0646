"""Everything pushorch prints goes through here: problems, JSON documents, tables."""

from __future__ import annotations

import json
import sys
from typing import Any

from pushorch.errors import InputError, PushorchError
from pushorch.secret import redact


def print_json(document: Any, indent: int | None = 4, sort_keys: bool = True) -> None:
    """A JSON document on stdout (secrets redacted; non-JSON scalars such as dates as strings)."""
    sys.stdout.write(json.dumps(redact(document), indent=indent, sort_keys=sort_keys, default=str) + "\n")


def print_text(text: str) -> None:
    sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))


def print_error(error: PushorchError) -> None:
    """One line per problem on stderr, `path:line:col: key/path: message`."""
    if isinstance(error, InputError):
        for problem in error.problems:
            sys.stderr.write(f"{problem}\n")
        count = len(error.problems)
        sys.stderr.write(f"error: {count} problem{'s' if count != 1 else ''} in the input; nothing was changed\n")
    else:
        sys.stderr.write(f"error: {error}\n")

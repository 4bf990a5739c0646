"""Secret values: carried through load and plan, never shown in any output."""

from __future__ import annotations

from typing import Any

REDACTED = "********"


class Secret:
    """A string that must not be printed; `reveal()` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def redact(value: Any) -> Any:
    """A copy of a JSON-like structure with every Secret replaced by the redaction marker."""
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """A copy of a JSON-like structure with every Secret replaced by its plain value."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reveal(v) for v in value]
    return value

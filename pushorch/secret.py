"""Secret values: carried through load and plan, never shown in any output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

REDACTED = "********"

# Every secret value this run has seen: output is scrubbed of them as a last line of defence (a
# secret that reached an error message through a host's stderr, or a traceback). Values shorter
# than 4 characters are not scrubbed: they would mangle ordinary text and hide nothing. Kept per
# run (`secrets_of_one_run`), not per process: one run's password ("first") must not blank out a
# word in the next run's output when both run in one process.
_KNOWN: ContextVar[set[str] | None] = ContextVar("pushorch_known_secrets", default=None)
_OUTSIDE_A_RUN: set[str] = set()  # library use with no run around it: the process is the run


def _known() -> set[str]:
    known = _KNOWN.get()
    return _OUTSIDE_A_RUN if known is None else known


@contextmanager
def secrets_of_one_run() -> Iterator[None]:
    """Within the block, the scrubber knows only the secrets created in it."""
    token = _KNOWN.set(set())
    try:
        yield
    finally:
        _KNOWN.reset(token)


class Secret:
    """A string that must not be printed; `reveal()` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:
            _known().add(value)

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


class VaultValue(Secret):
    """A value decrypted from an inline `!vault` block: shown, where values are shown, as Ansible shows
    it (the envelope, which is ciphertext), never as its plaintext."""

    __slots__ = ("envelope",)

    def __init__(self, value: str, envelope: str) -> None:
        super().__init__(value)
        self.envelope = envelope


def secret_leaves(value: Any) -> Any:
    """A JSON-like structure with every string value a Secret (what a vault-encrypted file holds)."""
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, dict):
        return {k: secret_leaves(v) for k, v in value.items()}
    if isinstance(value, list):
        return [secret_leaves(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """A setting's value, revealed: where a value configures pushorch itself (an address, a user name,
    a port) it is used as given, wherever it was read from (a vault file makes every value a Secret)."""
    return value.reveal() if isinstance(value, Secret) else value


def redact(value: Any) -> Any:
    """A copy of a JSON-like structure with every Secret replaced by the redaction marker."""
    if isinstance(value, VaultValue):
        return {"__ansible_vault": value.envelope}
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


def scrub(text: str) -> str:
    """The text with every known secret value replaced by the redaction marker (longest first)."""
    for value in sorted((v for v in _known() if v in text), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text

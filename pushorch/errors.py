"""The one exception tree of pushorch, and the exit status each error maps to.

    PushorchError                      exit 1 unless a subclass says otherwise
    ├── InputError                     exit 3: bad input, reported as path:line:col: key/path: message
    │   ├── InventoryError
    │   ├── PlaybookError
    │   └── TemplateError
    ├── TransportError                 exit 4: the connection never came or is gone (unreachable)
    │   ├── ConnectError
    │   └── AuthenticationError
    ├── CommandFailed                  exit 5
    ├── CommandTimeout                 exit 5: no result in time on a live connection: a failed step
    ├── BecomeFailed                   exit 5: sudo refused (the host answered; it is not unreachable)
    ├── NothingToRollBack              exit 5: `rollback` found no earlier version
    ├── LockHeld                       exit 7
    │   └── LockLost                   exit 7: another run took the fleet lock over while this one ran
    └── Interrupted                    exit 130/143: a second SIGINT/SIGTERM stopped the run at once

A failed health gate or an aborted rollout is not an exception: it is one host's result in the
rollout's report (rollout.RolloutReport), and the command's exit status (6) comes from there.

An InputError carries a list of Problems so that every problem in the input is
reported at once, sorted by file and position.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes; documented in the README."""

    OK = 0
    INTERNAL_ERROR = 1
    USAGE = 2
    BAD_INPUT = 3
    UNREACHABLE = 4
    APPLY_FAILED = 5
    ROLLOUT_ABORTED = 6
    LOCK_HELD = 7
    CHANGES_PENDING = 8
    REVERT_FAILED = 9  # a rollout aborted and a host could not be put back on its old version


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem in the input, located as precisely as the loader could."""

    path: str
    line: int = 0
    col: int = 0
    key: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where = f"{where}:{self.line}:{self.col or 1}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class PushorchError(Exception):
    """Base of every error pushorch raises on purpose."""

    exit_status = ExitStatus.INTERNAL_ERROR


class InputError(PushorchError):
    """Bad input: every problem found, located in its file."""

    exit_status = ExitStatus.BAD_INPUT

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = sorted(set([problems] if isinstance(problems, Problem) else problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class InventoryError(InputError):
    """A problem in an inventory source, host_vars or group_vars."""


class PlaybookError(InputError):
    """A problem in a playbook, vars file or extra vars."""


class TemplateError(InputError):
    """A Jinja2 template that failed to render for some host."""


class HostError(PushorchError):
    """An error on one host: its message starts with the host's name."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(f"{host}: {message}")


class TransportError(HostError):
    """A host could not be reached or talked to."""

    exit_status = ExitStatus.UNREACHABLE


class ConnectError(TransportError):
    """TCP or SSH handshake failed, or the host key was refused."""


class AuthenticationError(TransportError):
    """The host refused every credential offered."""


class CommandTimeout(HostError):
    """A command did not finish within its timeout. The connection still stands (a lost one is a
    ConnectError), so this is one failed step, undone like any other, not an unreachable host."""

    exit_status = ExitStatus.APPLY_FAILED


class CommandFailed(PushorchError):
    """A command on a host exited non-zero where success was required."""

    exit_status = ExitStatus.APPLY_FAILED

    def __init__(self, host: str, action: str, exit_status: int, stderr: str) -> None:
        self.host, self.action, self.status, self.stderr = host, action, exit_status, stderr
        lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
        # The last line, and Docker's own reason when the CLI ends with a summary of its own
        # (`docker start` ends "Error: failed to start containers: NAME"; why is on a line before).
        said = [line for line in lines[:-1] if line.startswith("Error response from daemon:")][-1:] + lines[-1:]
        super().__init__(f"{host}: {action}: exit {exit_status}: {'; '.join(said)}")


class BecomeFailed(PushorchError):
    """sudo -n refused to run the command (a password would be needed, or no sudo at all)."""

    exit_status = ExitStatus.APPLY_FAILED

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(f"{host}: {message}")


class NothingToRollBack(PushorchError):
    """`rollback` found no kept container of an earlier version (and no --to named one)."""

    exit_status = ExitStatus.APPLY_FAILED


class LockHeld(PushorchError):
    """Another run holds the lock."""

    exit_status = ExitStatus.LOCK_HELD


class Interrupted(PushorchError):
    """SIGINT or SIGTERM stopped the run at once (a second signal, or one while nothing was under way);
    the message says what it left. A first signal during a plan is no error: the steps under way
    finish and the command exits 128 + the signal's number after its recap."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status  # type: ignore[assignment]


class LockLost(LockHeld):
    """The fleet lock this run held was taken over (or could not be renewed before it expired):
    the run stopped before its next mutating step."""

"""The one place user strings are quoted for a POSIX shell; scripts are built only from these."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

Argv = tuple[str, ...]


def quote(value: str) -> str:
    """One shell word, byte-exact whatever it holds (metacharacters, newlines, unicode)."""
    if "\0" in value:
        # A NUL cannot pass through argv or a shell word; refusing is the only safe answer.
        raise ValueError("a NUL byte cannot be passed to a remote command")
    return shlex.quote(value)


def join(argv: Sequence[str]) -> str:
    """An argv as one shell command line."""
    return " ".join(quote(a) for a in argv)


def script(*commands: str | Sequence[str]) -> str:
    """Commands joined with '&&': each is an argv (quoted here) or an already-built script fragment."""
    return " && ".join(c if isinstance(c, str) else join(c) for c in commands)


def lines(commands: Iterable[str | Sequence[str]]) -> str:
    """A multi-line script, one command per line (argv quoted here)."""
    return "\n".join(c if isinstance(c, str) else join(c) for c in commands) + "\n"


def sh(script_text: str) -> Argv:
    """Run a script through sh -c."""
    return ("sh", "-c", script_text)


def become(argv: Argv, user: str = "root") -> Argv:
    """Run argv through `sudo -n` (never prompts: a password requirement is an error, not a hang)."""
    prefix: Argv = ("sudo", "-n") if user == "root" else ("sudo", "-n", "-u", user)
    return (*prefix, "--", *argv)


# The become wrapper's exit status and message when sudo refuses the password (check_become reads them).
PASSWORD_REFUSED_STATUS = 126
PASSWORD_REFUSED = "pushorch: sudo refused the become password"
_WITH_PASSWORD = (
    # The password is the first line of stdin; `read` takes exactly that line and leaves the rest for
    # the command. sudo checks it (-v: validate only, from a one-line pipe, so a wrong password ends
    # at EOF instead of waiting) and the command runs on the credentials sudo just cached, as a child
    # of this same shell. printf is a shell builtin: the password is in no process's arguments.
    'IFS= read -r p; printf "%s\\n" "$p" | sudo -S -p "" -v 2>/dev/null || '
    '{ echo "' + PASSWORD_REFUSED + '" >&2; exit ' + str(PASSWORD_REFUSED_STATUS) + "; }; "
    'p=; sudo -n -u "$0" -- "$@"'
)


def become_with_password(argv: Argv, user: str = "root") -> Argv:
    """Run argv through sudo with the become password on the first line of stdin (never in argv)."""
    return ("sh", "-c", _WITH_PASSWORD, user, *argv)


# What `bounded` exits with when the host ended the command at its deadline (coreutils and busybox).
DEADLINE_STATUSES = (124, 137)


def bounded(argv: Argv, seconds: float | None) -> Argv:
    """Run argv, killed on the host after `seconds` when the host has `timeout` (coreutils, busybox).

    Closing an SSH channel does not end the command behind it, and sshd refuses to signal root
    sessions: a `docker run` the controller gave up on would otherwise still start its container
    after the old one was restored. Without `timeout` on the host the command runs unbounded there.
    """
    if seconds is None:
        return argv
    wrapper = 'if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$0" "$@"; fi; exec "$@"'
    return ("sh", "-c", wrapper, f"{max(1, round(seconds))}", *argv)

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


# sudo with a password, in ONE sudo call that needs no credential cache (sudo's cache is keyed to the
# parent process and the terminal: it misses where /bin/sh is bash, which execs a script's last
# command, and under `timestamp_timeout=0`). stdin: the password's line, then SYNC_LINES lines of
# BECOME_SYNC, then the command's own input. `sudo -S -p ''` reads the password line byte by byte
# when it asks for one (and nothing when it does not: NOPASSWD, a cached credential); the inner
# shell, already the target user, skips the password line if sudo left it, then the sync lines, and
# execs the command on exactly its own input. A wrong password makes sudo retry on the sync lines
# (passwd_tries, 3 by default) and give up before it reaches the command's input.
BECOME_SYNC = "--pushorch-become-sync--"
SYNC_LINES = 3
PASSWORD_REFUSED_STATUS = 1  # sudo's own status when it gives up: check_become reads its message
PASSWORD_REFUSED = "incorrect password attempt"
BECOME_SYNC_LOST = 125  # the inner shell did not find the sync lines where they belong
_SYNCED = (
    'n=$0; IFS= read -r l || exit 125; [ "$l" = "$n" ] || { IFS= read -r l && [ "$l" = "$n" ]; } || exit 125; '
    + " ".join(['IFS= read -r l && [ "$l" = "$n" ] || exit 125;'] * (SYNC_LINES - 1))
    + ' l=; exec "$@"'
)


def become_with_password(argv: Argv, user: str = "root") -> Argv:
    """Run argv through sudo with the become password on the first line of stdin (never in argv);
    `password_input` is what goes before the command's own stdin."""
    return ("sudo", "-S", "-p", "", "-u", user, "--", "sh", "-c", _SYNCED, BECOME_SYNC, *argv)


def password_input(password: str) -> bytes:
    return (password + "\n" + (BECOME_SYNC + "\n") * SYNC_LINES).encode()


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


def wait_gone(pids: str, seconds: int) -> str:
    """Shell that waits until every process in `pids` (a shell word: "$old") has ended, `seconds` at
    most; status 0 if they did. A zombie not yet reaped counts as ended: `kill -0` still answers for it."""
    alive = f'alive=; for p in {pids}; do grep -Eqs "^State:[[:space:]]+[^Z[:space:]]" /proc/$p/status && alive=1; done'
    return (
        f'n=0; while {alive}; [ -n "$alive" ] && [ $n -lt {seconds * 10} ]; do n=$((n+1)); sleep 0.1; done; '
        '[ -z "$alive" ]'
    )

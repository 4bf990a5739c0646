"""The Transport protocol every connection kind implements, and the Result of a command."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from pushorch.commands import files
from pushorch.commands.shell import (
    BECOME_SYNC_LOST,
    PASSWORD_REFUSED,
    PASSWORD_REFUSED_STATUS,
    Argv,
    become,
    become_with_password,
    join,
    password_input,
)
from pushorch.connection import ConnectionSettings
from pushorch.errors import BecomeFailed, CommandFailed

# What sudo -n prints when it would have to ask for a password.
_SUDO_NEEDS_PASSWORD = ("a password is required", "a terminal is required")


@dataclass(frozen=True, slots=True)
class Result:
    """What one command did. Never raised on non-zero; `check()` does that."""

    host: str
    command: str
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self, action: str | None = None) -> Result:
        if not self.ok:
            raise CommandFailed(self.host, action or self.command, self.exit_status, self.stderr)
        return self


OnLine = Callable[[str, str], None]  # (stream name "stdout" | "stderr", line without its newline)


class Terminal(Protocol):
    """The controller's terminal for an interactive command (the CLI owns raw mode and the fds)."""

    term: str  # TERM, e.g. xterm-256color
    size: tuple[int, int]  # (columns, rows)

    async def read(self) -> bytes:
        """The next keystrokes; b"" when the terminal's input ends."""
        ...

    def write(self, data: bytes) -> None: ...


class TcpStream(Protocol):
    """A TCP connection opened from the host's side, through the SSH connection."""

    async def read(self, n: int = -1) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class StreamPair:
    """A TcpStream over a reader/writer pair (asyncio's streams and asyncssh's share this API)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._reader.read(n)
        return data

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()


class Transport(Protocol):
    """One host's connection: opened once per run, reused for every command, file and probe."""

    settings: ConnectionSettings

    async def connect(self) -> None: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        become: bool | None = None,
    ) -> Result: ...

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None: ...

    async def open_tcp(self, host: str, port: int) -> TcpStream: ...

    async def stream(self, argv: Sequence[str], on_line: OnLine, *, become: bool | None = None) -> int:
        """Run argv, handing each line of its stdout and stderr to on_line as it arrives; its exit status.
        Cancelling closes the channel: the remote command's stdin ends (commands that must stop then
        watch it: commands/docker.py follow_logs)."""
        ...

    async def interactive(self, argv: Sequence[str], terminal: Terminal, *, become: bool | None = None) -> int:
        """Run argv on a pseudo-terminal of the host, wired to `terminal` (raw keystrokes in, screen
        bytes out) until it exits; its exit status."""
        ...

    async def close(self) -> None: ...


def command_line(settings: ConnectionSettings, argv: Sequence[str], become_flag: bool | None) -> str:
    """The remote command line: argv quoted, wrapped in sudo when becoming another user (`sudo -n`, or
    with a become password the wrapper that reads it from stdin: see `stdin_for`)."""
    wanted = settings.become if become_flag is None else become_flag
    if not wanted:
        return join(tuple(argv))
    if settings.become_password is not None:
        return join(become_with_password(tuple(argv), settings.become_user))
    return join(become(tuple(argv), settings.become_user))


def password_line(settings: ConnectionSettings, become_flag: bool | None) -> bytes:
    """What goes to the command's stdin before its own input: the become password's line, or nothing."""
    wanted = settings.become if become_flag is None else become_flag
    if wanted and settings.become_password is not None:
        return password_input(settings.become_password.reveal())
    return b""


def refuse_interactive_password(settings: ConnectionSettings, become_flag: bool | None) -> None:
    """A terminal would echo the password line: interactive sessions need NOPASSWD (or root)."""
    if password_line(settings, become_flag):
        raise BecomeFailed(
            settings.name,
            "become: an interactive session cannot send a become password; "
            "allow NOPASSWD in sudoers for it, or connect as root",
        )


def stdin_for(settings: ConnectionSettings, stdin: bytes | None, become_flag: bool | None) -> bytes | None:
    line = password_line(settings, become_flag)
    return line + (stdin or b"") if line else stdin


def check_become(settings: ConnectionSettings, result: Result, become_flag: bool | None) -> Result:
    """Turn sudo's 'password required' into a clear error naming the host."""
    wanted = settings.become if become_flag is None else become_flag
    with_password = wanted and settings.become_password is not None
    if with_password and result.exit_status == PASSWORD_REFUSED_STATUS and PASSWORD_REFUSED in result.stderr:
        raise BecomeFailed(
            settings.name, f"become: sudo refused the become password for {settings.user or 'this user'}"
        )
    if with_password and result.exit_status == BECOME_SYNC_LOST and not result.stdout:
        raise BecomeFailed(settings.name, "become: the password exchange with sudo went wrong (sync lines missing)")
    if wanted and result.exit_status == 127 and "sudo" in result.stderr and "not found" in result.stderr:
        raise BecomeFailed(settings.name, "become: sudo is not installed on this host")
    if wanted and result.exit_status == 1 and any(s in result.stderr for s in _SUDO_NEEDS_PASSWORD):
        raise BecomeFailed(
            settings.name,
            f"become: sudo needs a password for {settings.user or 'this user'} (pushorch runs sudo -n); "
            "allow NOPASSWD for it in sudoers, or connect as root",
        )
    return result


def time_limit(settings: ConnectionSettings, timeout: float | None) -> float | None:
    """A command's timeout: the step's own, bounded by the host's `pushorch_command_timeout` when set
    (the user's bound wins over pushorch's defaults: 300 s for `docker run` is no use to someone who
    asked for 20)."""
    bounds = [t for t in (timeout, settings.command_timeout) if t is not None]
    return min(bounds) if bounds else None


def timeout_message(argv: Sequence[str], limit: float | None) -> str:
    return f"{' '.join(argv)[:120]}: no result after {limit or 0:g}s"


def put_argv(path: str, mode: int) -> Argv:
    return files.put(path, mode, secrets.token_hex(6))


def decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


class _Closable(Protocol):
    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


@dataclass
class Shared:
    """What one run's transports share, closed when the run ends: jump-host connections (one per
    chain of hops, however many hosts go through it) and paramiko's thread pool (the default executor
    has cpu+4 threads; a fleet needs one per host in flight)."""

    jumps: dict[str, Any] = field(default_factory=dict)  # "user@hop:port,..." -> its SSH connection
    threads: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self.threads is None:
            self.threads = ThreadPoolExecutor(max_workers=512, thread_name_prefix="paramiko")
        return self.threads

    async def close(self) -> None:
        jumps: list[_Closable] = list(self.jumps.values())
        self.jumps.clear()
        for connection in jumps:
            connection.close()
            await connection.wait_closed()
        if self.threads is not None:
            self.threads.shutdown(wait=False)

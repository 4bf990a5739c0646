"""The default transport: one asyncssh connection per host, commands as channels on it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence
from typing import Any

import asyncssh

from pushorch.connection import ConnectionSettings, parse_jump
from pushorch.errors import AuthenticationError, CommandTimeout, ConnectError
from pushorch.transport import hostkeys
from pushorch.transport.base import (
    OnLine,
    Result,
    Shared,
    StreamPair,
    TcpStream,
    Terminal,
    check_become,
    command_line,
    decode,
    password_line,
    put_argv,
    refuse_interactive_password,
    stdin_for,
    time_limit,
    timeout_message,
)


class _SshStream(StreamPair):
    """A forwarded TCP stream whose SSH connection may go away mid-read (a host restarted during a
    gate): that is a lost host, like any command on the connection, not asyncssh's own exception."""

    def __init__(self, host: str, reader: Any, writer: Any) -> None:
        super().__init__(reader, writer)
        self._host = host

    async def read(self, n: int = -1) -> bytes:
        try:
            return await super().read(n)
        except asyncssh.Error as exc:
            raise ConnectError(self._host, f"connection lost: {exc}") from None

    async def write(self, data: bytes) -> None:
        try:
            await super().write(data)
        except asyncssh.Error as exc:
            raise ConnectError(self._host, f"connection lost: {exc}") from None


class AsyncsshTransport:
    """Transport over asyncssh; host keys verified as the settings' policy says."""

    def __init__(self, settings: ConnectionSettings, shared: Shared | None = None):
        self.settings = settings
        self._conn: asyncssh.SSHClientConnection | None = None
        self._jumps = (shared if shared is not None else Shared()).jumps  # one connection per chain

    def _options(self, address: str, port: int | None, user: str | None) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {
            "connect_timeout": s.connect_timeout,
            "login_timeout": max(s.connect_timeout, 10.0),
            "keepalive_interval": s.keepalive,
            "keepalive_count_max": 3,
            "known_hosts": hostkeys.trusted_for(s, address, port),
            "ignore_encrypted": True,
        }
        if s.ssh_config:
            options["config"] = [s.ssh_config]
        if port is not None:
            options["port"] = port
        if user is not None:
            options["username"] = user
        if s.key_files:
            options["client_keys"] = list(s.key_files)
        if s.password is not None:
            options["password"] = s.password.reveal()
        return options

    async def connect(self) -> None:
        s = self.settings
        try:
            tunnel = await self._tunnel()
            options = self._options(s.address, s.port, s.user)
            self._conn = await asyncssh.connect(s.address, tunnel=tunnel or (), **options)
            await self._learn_key(self._conn, s.address, s.port)
        except Exception as exc:
            raise self._connect_error(exc) from None

    async def _tunnel(self) -> asyncssh.SSHClientConnection | None:
        """Connect (or reuse) each ProxyJump hop in order; hops are verified like the host."""
        if not self.settings.proxy_jump:
            return None
        previous: asyncssh.SSHClientConnection | None = None
        chain = ""
        for hop in self.settings.proxy_jump.split(","):
            chain = f"{chain},{hop}" if chain else hop
            conn = self._jumps.get(chain)
            if conn is None:
                user, host, port = parse_jump(hop.strip())
                options = self._options(host, port, user or self.settings.user)
                conn = await asyncssh.connect(host, tunnel=previous or (), **options)
                await self._learn_key(conn, host, port)
                self._jumps[chain] = conn
            previous = conn
        return previous

    async def _learn_key(self, conn: asyncssh.SSHClientConnection, address: str, port: int | None) -> None:
        if self.settings.host_key_checking == "accept-new":
            key = conn.get_server_host_key()
            if key is not None:
                hostkeys.remember(self.settings, address, port, key.export_public_key().decode())

    def _connect_error(self, exc: BaseException) -> Exception:
        name, s = self.settings.name, self.settings
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return ConnectError(name, hostkeys.refusal_message(s, str(exc.reason)))
        if isinstance(exc, asyncssh.PermissionDenied):
            return AuthenticationError(name, f"authentication refused for user {s.user or '(default)'}: {exc.reason}")
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return ConnectError(name, f"no SSH answer from {s.address}:{s.port or 22} within {s.connect_timeout:g}s")
        if isinstance(exc, asyncssh.Error):
            return ConnectError(name, f"SSH connection to {s.address}:{s.port or 22} failed: {exc.reason}")
        if isinstance(exc, OSError):
            return ConnectError(name, f"cannot connect to {s.address}:{s.port or 22}: {exc.strerror or exc}")
        if isinstance(exc, (ConnectError, AuthenticationError)):
            return exc
        return ConnectError(name, f"cannot connect: {type(exc).__name__}: {exc}")

    def _connection(self) -> asyncssh.SSHClientConnection:
        if self._conn is None:
            raise ConnectError(self.settings.name, "not connected")
        return self._conn

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        become: bool | None = None,
    ) -> Result:
        command = command_line(self.settings, argv, become)
        limit = time_limit(self.settings, timeout)
        started = time.monotonic()
        try:
            feed = stdin_for(self.settings, stdin, become)
            connection = self._connection()
            process = await connection.create_process(command, encoding=None)
            # Input or not, the command's stdin ends (as with paramiko): an empty `put` waited forever.
            try:
                if feed:
                    process.stdin.write(feed)
                process.stdin.write_eof()
            except BrokenPipeError:
                # The command ended before reading its input (`cat > DIR/missing/f` fails at once):
                # its exit status tells what happened. Only a closed connection is a lost host.
                if connection.is_closed():
                    raise
            try:
                done = await asyncio.wait_for(process.wait(check=False), limit)
            except TimeoutError:
                # Closing the channel alone leaves a hung command running on the host: ask sshd to TERM
                # it first (OpenSSH refuses this for root logins; steps that must not finish late carry
                # their own deadline on the host, commands/shell.py bounded()).
                with contextlib.suppress(asyncssh.Error, OSError):
                    process.send_signal("TERM")
                process.close()
                raise CommandTimeout(self.settings.name, timeout_message(argv, limit)) from None
        except (asyncssh.Error, OSError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        status = done.exit_status
        if status is None and not done.exit_signal and connection.is_closed():
            # no status and no signal: the connection went while the command ran (asyncssh ends the
            # wait without an error), a lost host, not a command that failed
            raise ConnectError(self.settings.name, "connection lost while the command ran")
        if status is None:  # killed by a signal: report it the way a shell does
            name = done.exit_signal[0] if done.exit_signal else ""
            status = 128 + getattr(signal, f"SIG{name}", 127) if name else 255
        result = Result(
            self.settings.name,
            command,
            status,
            decode(done.stdout),
            decode(done.stderr),
            time.monotonic() - started,
        )
        return check_become(self.settings, result, become)

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None:
        result = await self.run(put_argv(path, mode), stdin=data, become=become)
        result.check(f"write {path}")

    async def stream(self, argv: Sequence[str], on_line: OnLine, *, become: bool | None = None) -> int:
        command = command_line(self.settings, argv, become)
        try:
            process = await self._connection().create_process(command, encoding="utf-8", errors="replace")
            if line := password_line(self.settings, become):
                process.stdin.write(line.decode())
        except (asyncssh.Error, OSError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None

        async def pump(reader: Any, name: str) -> None:
            while line := await reader.readline():  # "" only at the end; an empty line is "\n"
                on_line(name, line.rstrip("\n"))

        try:
            await asyncio.gather(pump(process.stdout, "stdout"), pump(process.stderr, "stderr"))
            done = await process.wait(check=False)
        except (asyncssh.Error, OSError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        finally:
            process.close()
        return done.exit_status if done.exit_status is not None else 255

    async def interactive(self, argv: Sequence[str], terminal: Terminal, *, become: bool | None = None) -> int:
        refuse_interactive_password(self.settings, become)
        command = command_line(self.settings, argv, become)
        try:
            process = await self._connection().create_process(
                command, term_type=terminal.term, term_size=terminal.size, encoding=None
            )
        except (asyncssh.Error, OSError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None

        async def keys() -> None:
            while data := await terminal.read():
                process.stdin.write(data)
            process.stdin.write_eof()

        feeder = asyncio.create_task(keys())
        try:
            while data := await process.stdout.read(65536):
                terminal.write(data)
            done = await process.wait(check=False)
        except (asyncssh.Error, OSError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        finally:
            feeder.cancel()
            process.close()
        return done.exit_status if done.exit_status is not None else 255

    async def open_tcp(self, host: str, port: int) -> TcpStream:
        try:
            reader, writer = await self._connection().open_connection(host, port, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            raise ConnectionRefusedError(f"{self.settings.name}: cannot open {host}:{port}: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:  # the SSH connection itself is gone
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        return _SshStream(self.settings.name, reader, writer)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None

"""The paramiko transport: the same protocol as asyncssh, blocking paramiko calls run in threads."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import paramiko

from pushorch.connection import ConnectionSettings, parse_jump
from pushorch.errors import AuthenticationError, CommandTimeout, ConnectError
from pushorch.transport import hostkeys
from pushorch.transport.base import (
    OnLine,
    Result,
    Shared,
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

T = TypeVar("T")

# paramiko's reader thread (one per connection) wakes every 0.1 s to check for shutdown; with hundreds
# of connections those wake-ups alone keep the GIL busy. close() shuts the socket, which wakes the
# thread at once, so a longer poll costs nothing but idle CPU.
paramiko.Transport._active_check_timeout = 2.0  # type: ignore[attr-defined]
# paramiko logs a failed handshake with its traceback; Python's last-resort handler would print that
# on stderr (only the reporter prints: every failure reaches it as a TransportError).
logging.getLogger("paramiko").addHandler(logging.NullHandler())


# paramiko builds a channel's data and EOF under the channel's lock but sends them after releasing it
# (paramiko issues 1115 and 1705): when the command has already ended, its reader thread can send the
# channel's close in between, and OpenSSH then drops the whole connection ("data packet referred to
# nonexistent channel"), every command on it lost (the suite, 8 commands at once that exit without
# reading their input). Commands therefore read their input to its end before they exit: the
# server's close can only come after everything this side sends.
_READ_TO_END = ("sh", "-c", '"$@"; s=$?; cat >/dev/null; exit $s', "sh")


def _lost(transport: paramiko.Transport) -> None:
    """A channel closed without an EOF or an exit status: a lost connection, unless it still stands."""
    if not transport.is_active():
        raise EOFError("the SSH connection is closed")


class _Refused(paramiko.SSHException):
    """The host key policy refused the key; `reason` goes into hostkeys.refusal_message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Policy(paramiko.MissingHostKeyPolicy):
    """Unknown host keys: refuse (strict), remember (accept-new) or accept (off)."""

    def __init__(self, settings: ConnectionSettings, address: str, port: int | None) -> None:
        self.settings, self.address, self.port = settings, address, port

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        policy = self.settings.host_key_checking
        if policy == "strict":
            raise _Refused("the host key is unknown")
        if policy == "accept-new":
            if hostkeys.is_known(self.settings, self.address, self.port):  # known, but not with this key
                raise _Refused("the host key has changed or is revoked")
            hostkeys.remember(self.settings, self.address, self.port, f"{key.get_name()} {key.get_base64()}")


class _Stream:
    def __init__(self, channel: paramiko.Channel, run: Callable[..., Any]) -> None:
        self._channel, self._run = channel, run

    async def read(self, n: int = -1) -> bytes:
        data: bytes = await self._run(self._channel.recv, 65536 if n < 0 else n)
        return data

    async def write(self, data: bytes) -> None:
        await self._run(self._channel.sendall, data)

    async def close(self) -> None:
        await self._run(self._channel.close)


class ParamikoTransport:
    """Transport over paramiko; every blocking call runs on a thread pool shared by the run."""

    def __init__(self, settings: ConnectionSettings, shared: Shared | None = None) -> None:
        self.settings = settings
        self._shared = shared if shared is not None else Shared()
        self._clients: list[paramiko.SSHClient] = []

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._shared.pool(), lambda: func(*args))

    @property
    def _client(self) -> paramiko.SSHClient:
        if not self._clients:
            raise ConnectError(self.settings.name, "not connected")
        return self._clients[-1]

    async def connect(self) -> None:
        try:
            await self._call(self._connect_sync)
        except Exception as exc:
            raise self._connect_error(exc) from None

    def _open(self, address: str, port: int | None, user: str | None, sock: Any) -> paramiko.SSHClient:
        s = self.settings
        config: dict[str, Any] = {}
        ssh_config = s.ssh_config or os.path.expanduser("~/.ssh/config")
        if os.path.exists(ssh_config):
            config = dict(paramiko.SSHConfig.from_path(ssh_config).lookup(address))
        hostname, port = str(config.get("hostname", address)), port or int(config.get("port", 22))
        client = paramiko.SSHClient()
        if s.host_key_checking != "off":
            self._trust(client, hostname, port)
        client.set_missing_host_key_policy(_Policy(s, hostname, port))
        key_files = list(s.key_files) or list(config.get("identityfile", []))
        client.connect(
            hostname=hostname,
            port=port,
            username=user or config.get("user"),
            key_filename=[os.path.expanduser(k) for k in key_files] or None,  # type: ignore[arg-type]  # a list works
            password=s.password.reveal() if s.password else None,
            timeout=s.connect_timeout,
            banner_timeout=s.connect_timeout,
            auth_timeout=max(s.connect_timeout, 10.0),
            allow_agent=True,
            look_for_keys=not key_files,
            sock=sock,
        )
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(int(s.keepalive))
        self._clients.append(client)
        return client

    def _trust(self, client: paramiko.SSHClient, address: str, port: int | None) -> None:
        """Give the client the known_hosts keys for this host only, from the file parsed once per run
        (hostkeys, shared with asyncssh). paramiko's own HostKeys took the logging lock for every line
        it loaded and searched every entry for every host: at 1,000 hosts, minutes of lock contention."""
        name = address if port in (None, 22) else f"[{address}]:{port}"
        for keytype, blob in hostkeys.trusted_keys(self.settings, address, port):
            client.get_host_keys().add(name, keytype, paramiko.PKey.from_type_string(keytype, blob))

    def _connect_sync(self) -> None:
        s = self.settings
        hops = [parse_jump(h.strip()) for h in (s.proxy_jump or "").split(",") if h.strip()]
        targets = [(host, port or 22) for _, host, port in hops[1:]] + [(s.address, s.port or 22)]
        sock = None
        for (user, host, port), target in zip(hops, targets, strict=False):
            # Each hop opens a channel to the next hop (or to the host itself).
            transport = self._open(host, port, user or s.user, sock).get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", target, ("127.0.0.1", 0))
        self._open(s.address, s.port, s.user, sock)

    def _connect_error(self, exc: BaseException) -> Exception:
        name, s = self.settings.name, self.settings
        if isinstance(exc, paramiko.BadHostKeyException):
            return ConnectError(name, hostkeys.refusal_message(s, "the host key has changed"))
        if isinstance(exc, paramiko.AuthenticationException):
            return AuthenticationError(name, f"authentication refused for user {s.user or '(default)'}: {exc}")
        # A peer that never sends its banner: paramiko's reader thread gives up, and connect() then fails
        # with "No existing session" (the transport died before authentication).
        silent = isinstance(exc, paramiko.SSHException) and any(
            m in str(exc) for m in ("protocol banner", "No existing session")
        )
        if isinstance(exc, (socket.timeout, TimeoutError)) or silent:
            return ConnectError(name, f"no SSH answer from {s.address}:{s.port or 22} within {s.connect_timeout:g}s")
        if isinstance(exc, _Refused):
            return ConnectError(name, hostkeys.refusal_message(s, exc.reason))
        if isinstance(exc, paramiko.SSHException):
            return ConnectError(name, f"SSH connection to {s.address}:{s.port or 22} failed: {exc}")
        if isinstance(exc, OSError):
            return ConnectError(name, f"cannot connect to {s.address}:{s.port or 22}: {exc.strerror or exc}")
        return ConnectError(name, f"cannot connect: {type(exc).__name__}: {exc}")

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
            sent = command_line(self.settings, (*_READ_TO_END, *argv), become)
            status, out, err = await self._call(self._run_sync, sent, feed, limit)
        except TimeoutError:
            raise CommandTimeout(self.settings.name, timeout_message(argv, limit)) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        result = Result(self.settings.name, command, status, decode(out), decode(err), time.monotonic() - started)
        return check_become(self.settings, result, become)

    def _run_sync(self, command: str, stdin: bytes | None, limit: float | None) -> tuple[int, bytes, bytes]:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise EOFError("the SSH connection is closed")
        channel = transport.open_session()
        try:
            channel.exec_command(command)
            try:
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
            except OSError:
                # The command ended before reading its input: its exit status tells what happened.
                # Only a closed connection is a lost host.
                if not transport.is_active():
                    raise
            deadline = None if limit is None else time.monotonic() + limit
            out, err = bytearray(), bytearray()

            def remaining() -> float | None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                return left

            while not channel.eof_received:
                if channel.closed:  # never an EOF: the connection went (a select on it returns at once)
                    _lost(transport)
                    break
                # Drain both streams as they fill, so a chatty stderr cannot block stdout.
                while channel.recv_ready():
                    out += channel.recv(1 << 16)
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(1 << 16)
                left = remaining()
                select.select([channel], [], [], 0.2 if left is None else min(0.2, left))
            while channel.recv_ready():
                out += channel.recv(1 << 16)
            while not channel.status_event.wait(0.2):
                remaining()
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(1 << 16)
            if channel.closed and channel.exit_status == -1:  # closed before any status came
                _lost(transport)
            return channel.recv_exit_status(), bytes(out), bytes(err)
        finally:
            channel.close()

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None:
        (await self.run(put_argv(path, mode), stdin=data, become=become)).check(f"write {path}")

    async def stream(self, argv: Sequence[str], on_line: OnLine, *, become: bool | None = None) -> int:
        command = command_line(self.settings, argv, become)
        password = password_line(self.settings, become)
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def deliver(name: str, line: bytes) -> None:
            loop.call_soon_threadsafe(on_line, name, decode(line).rstrip("\n"))

        def work() -> int:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                raise EOFError("the SSH connection is closed")
            channel = transport.open_session()
            try:
                channel.exec_command(command)
                if password:
                    channel.sendall(password)
                pending = {"stdout": b"", "stderr": b""}
                while not stop.is_set():
                    got = False
                    for name, ready, recv in (
                        ("stdout", channel.recv_ready, channel.recv),
                        ("stderr", channel.recv_stderr_ready, channel.recv_stderr),
                    ):
                        while ready():
                            got = True
                            *lines, pending[name] = (pending[name] + recv(1 << 16)).split(b"\n")
                            for line in lines:
                                deliver(name, line)
                    if not got and channel.exit_status_ready() and not channel.recv_ready():
                        break
                    if not got:
                        select.select([channel], [], [], 0.2)
                for name, rest in pending.items():
                    if rest:
                        deliver(name, rest)
                return channel.recv_exit_status() if not stop.is_set() else 255
            finally:
                channel.close()  # ends the remote command's stdin

        try:
            return await self._call(work)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        finally:
            stop.set()

    async def interactive(self, argv: Sequence[str], terminal: Terminal, *, become: bool | None = None) -> int:
        refuse_interactive_password(self.settings, become)
        command = command_line(self.settings, argv, become)
        loop = asyncio.get_running_loop()
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectError(self.settings.name, "not connected")
        try:
            channel = await self._call(transport.open_session)
            await self._call(channel.get_pty, terminal.term, *terminal.size)
            await self._call(channel.exec_command, command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None

        def screen() -> int:
            while data := channel.recv(65536):
                loop.call_soon_threadsafe(terminal.write, data)
            return channel.recv_exit_status()

        async def keys() -> None:
            while data := await terminal.read():
                await self._call(channel.sendall, data)
            await self._call(channel.shutdown_write)

        feeder = asyncio.create_task(keys())
        try:
            return await self._call(screen)
        finally:
            feeder.cancel()
            channel.close()

    async def open_tcp(self, host: str, port: int) -> TcpStream:
        transport = self._client.get_transport()
        if transport is None:
            raise ConnectError(self.settings.name, "not connected")
        try:
            channel = await self._call(transport.open_channel, "direct-tcpip", (host, port), ("127.0.0.1", 0))
        except paramiko.ChannelException as exc:
            raise ConnectionRefusedError(f"{self.settings.name}: cannot open {host}:{port}: {exc}") from None
        except (paramiko.SSHException, EOFError) as exc:  # the SSH connection itself is gone
            raise ConnectError(self.settings.name, f"connection lost: {exc}") from None
        return _Stream(channel, self._call)

    async def close(self) -> None:
        for client in reversed(self._clients):
            await self._call(client.close)
        self._clients.clear()

"""A scripted transport for executor unit tests only: answers from a table, records every call."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pushorch.commands.shell import join
from pushorch.connection import ConnectionSettings
from pushorch.errors import ConnectError
from pushorch.transport.base import OnLine, Result, TcpStream, Terminal


@dataclass
class Script:
    """Answers by regex over the joined command line; the first match wins."""

    answers: list[tuple[str, int, str, str]] = field(default_factory=list)
    unreachable: bool = False
    http: list[tuple[str, int, str]] = field(default_factory=list)  # (request-line regex, status, body)

    def answer(self, pattern: str, exit_status: int = 0, stdout: str = "", stderr: str = "") -> Script:
        self.answers.append((pattern, exit_status, stdout, stderr))
        return self

    def serve(self, pattern: str, status: int, body: str = "") -> Script:
        """An HTTP reply through open_tcp for requests whose first line matches (Consul agent calls)."""
        self.http.append((pattern, status, body))
        return self


class _HttpStream:
    """One scripted HTTP/1.0 exchange: the request is read whole, the first matching reply sent."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport, self.reply = transport, b""

    async def write(self, data: bytes) -> None:
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        self.transport.calls.append(f"http {line}")
        for pattern, status, body in self.transport.script.http:
            if re.search(pattern, line):
                self.reply = f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
                return
        self.reply = b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    async def read(self, n: int = -1) -> bytes:
        out, self.reply = (self.reply, b"") if n < 0 else (self.reply[:n], self.reply[n:])
        return out

    async def close(self) -> None:
        return None


class FakeTransport:
    """Implements Transport without I/O; `calls` and `files` say what the code under test did."""

    def __init__(self, settings: ConnectionSettings, script: Script | None = None) -> None:
        self.settings = settings
        self.script = script or Script()
        self.calls: list[str] = []
        self.files: dict[str, tuple[bytes, int]] = {}
        self.connected = False

    async def connect(self) -> None:
        if self.script.unreachable:
            raise ConnectError(self.settings.name, "unreachable (scripted)")
        self.connected = True

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
        become: bool | None = None,
    ) -> Result:
        command = join(argv)
        self.calls.append(command)
        for pattern, status, out, err in self.script.answers:
            if re.search(pattern, command):
                return Result(self.settings.name, command, status, out, err, 0.0)
        return Result(self.settings.name, command, 0, "", "", 0.0)

    async def put(self, data: bytes, path: str, mode: int = 0o644, *, become: bool | None = None) -> None:
        self.calls.append(f"put {path} {mode:04o}")
        self.files[path] = (data, mode)

    async def stream(self, argv: Sequence[str], on_line: OnLine, *, become: bool | None = None) -> int:
        """The scripted answer's output, line by line."""
        result = await self.run(argv, become=become)
        for line in result.stdout.splitlines():
            on_line("stdout", line)
        for line in result.stderr.splitlines():
            on_line("stderr", line)
        return result.exit_status

    async def interactive(self, argv: Sequence[str], terminal: Terminal, *, become: bool | None = None) -> int:
        result = await self.run(argv, become=become)
        terminal.write(result.stdout.encode())
        return result.exit_status

    async def open_tcp(self, host: str, port: int) -> TcpStream:
        if self.script.http:
            return _HttpStream(self)
        raise ConnectionRefusedError(f"{self.settings.name}: fake transport has no TCP ({host}:{port})")

    async def close(self) -> None:
        self.connected = False
